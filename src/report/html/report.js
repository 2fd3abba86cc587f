// rdbinsight report page. Reads the ReportData JSON embedded in #report-data and builds every
// section from it. Rules this file keeps:
// - no network: nothing is fetched, every asset is inline (the page's CSP forbids it anyway);
// - data never becomes markup: every string from the report goes through textContent /
//   createTextNode / setAttribute, never innerHTML;
// - numbers are shown exactly with our own digit grouping (never the browser locale), a
//   rounded form only beside them;
// - big inputs stay fast: the prefix chart is a canvas that draws only the nodes of the zoomed
//   subtree that are at least a pixel wide, tables are paginated.
(function () {
  'use strict';

  var TYPES = ['string', 'list', 'set', 'zset', 'hash', 'stream', 'module'];
  var MAX_KEY_CHARS = 2000;

  // ---------- small helpers ----------

  function arr(x) { return Array.isArray(x) ? x : []; }
  function num(x) { return typeof x === 'number' && isFinite(x) ? x : 0; }
  function agg(x) {
    x = x || {};
    return { keys: num(x.keys), rdb_size: num(x.rdb_size), mem_size: num(x.mem_size),
      mem_missing: num(x.mem_missing), member_count: num(x.member_count) };
  }

  function append(parent, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { for (var i = 0; i < child.length; i++) append(parent, child[i]); return; }
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }

  // el('td', {class: 'n', title: '...', onclick: fn}, 'text', node, [more]): attributes are set
  // with setAttribute (values are text), children appended as text nodes or nodes.
  function el(tag, props) {
    var e = document.createElement(tag);
    if (props) {
      for (var k in props) {
        if (!Object.prototype.hasOwnProperty.call(props, k)) continue;
        var v = props[k];
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') e.className = v;
        else if (k.slice(0, 2) === 'on' && typeof v === 'function') e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (var j = 2; j < arguments.length; j++) append(e, arguments[j]);
    return e;
  }

  function plural(n, one, many) { return n === 1 ? one : many; }

  // 1234567 -> "1,234,567". Own grouping so the page reads the same in every locale.
  function fmtInt(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '\u2013';
    var neg = n < 0;
    var s = String(Math.round(Math.abs(n)));
    if (s.indexOf('e') >= 0) return (neg ? '-' : '') + s;
    var out = '';
    while (s.length > 3) { out = ',' + s.slice(-3) + out; s = s.slice(0, -3); }
    return (neg ? '-' : '') + s + out;
  }

  function scaled(v, step, units) {
    var u = 0;
    while (v >= step && u < units.length - 1) { v /= step; u++; }
    var r = v < 100 ? Math.round(v * 10) / 10 : Math.round(v);
    if (r >= step && u < units.length - 1) { r = 1; u++; }
    return { value: r, unit: units[u] };
  }

  // 500000 -> "500K", 1234567 -> "1.2M": a rounded count, shown beside the exact one.
  function fmtShort(n) {
    n = num(n);
    if (Math.abs(n) < 1000) return fmtInt(n);
    var s = scaled(Math.abs(n), 1000, ['', 'K', 'M', 'B', 'T', 'Q']);
    var v = s.value >= 10 ? Math.round(s.value) : s.value;
    return (n < 0 ? '-' : '') + v + s.unit;
  }

  // Binary units: 1288490188 -> "1.2 GiB".
  function fmtBytes(n) {
    n = num(n);
    if (n < 1024) return fmtInt(n) + ' B';
    var s = scaled(n, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB']);
    return s.value + ' ' + s.unit;
  }

  function fmtPct(part, whole) {
    part = num(part); whole = num(whole);
    if (whole <= 0) return '\u2013';
    var p = 100 * part / whole;
    if (part === 0) return '0%';
    if (part === whole) return '100%';
    if (p < 0.1) return '<0.1%';
    if (p > 99.9) return '>99.9%';
    return p.toFixed(1) + '%';
  }

  function fmtRatio(x) { return isFinite(x) ? x.toFixed(2) + '\u00d7' : '\u2013'; }

  // A duration in seconds, rounded to one unit: "45 s", "12 min", "3.5 h", "12 d".
  function fmtDur(sec) {
    sec = Math.abs(num(sec));
    if (sec < 60) return (Math.round(sec * 10) / 10) + ' s';
    var units = [[86400, 'd'], [3600, 'h'], [60, 'min']];
    for (var i = 0; i < units.length; i++) {
      if (sec >= units[i][0]) {
        var v = sec / units[i][0];
        return (v < 10 ? Math.round(v * 10) / 10 : Math.round(v)) + ' ' + units[i][1];
      }
    }
    return sec + ' s';
  }

  // An exact bucket bound: 60 -> "1 min", 86400 -> "1 d", 90 -> "90 s".
  function fmtBound(sec) {
    if (sec > 0 && sec % 86400 === 0) return (sec / 86400) + ' d';
    if (sec > 0 && sec % 3600 === 0) return (sec / 3600) + ' h';
    if (sec > 0 && sec % 60 === 0) return (sec / 60) + ' min';
    return fmtInt(sec) + ' s';
  }

  function ttlText(ms) {
    if (ms === null || ms === undefined) return 'no TTL';
    if (ms <= 0) return 'expired ' + fmtDur(-ms / 1000) + ' before';
    return fmtDur(ms / 1000);
  }

  function keyText(kt) { return kt && typeof kt.text === 'string' ? kt.text : ''; }

  // A key or prefix as text (never markup). \xNN escapes are already in KeyText.text.
  function keyNode(kt, emptyLabel) {
    var t = keyText(kt);
    if (t === '') {
      return el('span', { class: 'key special', title: 'the empty byte string' }, emptyLabel || '(empty)');
    }
    var cut = kt && typeof kt.len === 'number';
    var shown = t.length > MAX_KEY_CHARS ? t.slice(0, MAX_KEY_CHARS) + '\u2026' : t;
    if (cut && shown === t) shown = t + '\u2026';
    var tips = [];
    if (cut) {
      // A key longer than the report keeps: its first bytes, its length and its digest.
      tips.push('a key of ' + fmtInt(kt.len) + ' bytes, shown by its first bytes; SHA-256 ' + (kt.sha256 || ''));
    } else if (t.length > MAX_KEY_CHARS) {
      tips.push(fmtInt(t.length) + ' characters, cut here; the CSV has all');
    }
    if (kt && kt.base64) tips.push('shown with escapes: \\xNN is a byte (a control character or not UTF-8), \\\\ a backslash. Exact bytes (base64): ' + kt.base64.slice(0, MAX_KEY_CHARS));
    return el('span', { class: 'key', title: tips.length ? tips.join('\n') : null }, shown);
  }

  function bar(part, whole, color) {
    var w = whole > 0 ? Math.max(0, Math.min(100, 100 * part / whole)) : 0;
    var fill = el('span');
    fill.style.width = w.toFixed(2) + '%';
    if (color) fill.style.background = color;
    return el('div', { class: 'bar', 'aria-hidden': 'true' }, fill);
  }

  function typeColorVar(t) { return 'var(--t-' + (TYPES.indexOf(t) >= 0 ? t : 'none') + ')'; }

  function swatch(t) {
    var s = el('span', { class: 'swatch', 'aria-hidden': 'true' });
    s.style.background = typeColorVar(t);
    return s;
  }

  function fileSafe(s) { return String(s).replace(/[^A-Za-z0-9._-]+/g, '_'); }

  // A download made in the page (Blob URL): no network.
  function download(name, text, mime) {
    var blob = new Blob([text], { type: mime });
    var url = URL.createObjectURL(blob);
    var a = el('a', { href: url, download: name });
    a.hidden = true;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
  }

  // Spreadsheets run a cell that starts with = + - @ (or tab / CR) as a formula, and keys are
  // written by whoever writes to Redis (CSV injection): such text gets a leading ' so it stays
  // text. Numbers are never touched. A key column then also fills its _base64 column, so the
  // exact bytes are still in the file.
  var FORMULA_START = /^[=+\-@\t\r]/;

  // RFC 4180: fields with a comma, quote, CR or LF are quoted, quotes doubled; CRLF line ends.
  function csvField(v) {
    var s = v === null || v === undefined ? '' : String(v);
    if (typeof v === 'string' && FORMULA_START.test(s)) s = "'" + s;
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  // Base64 of the UTF-8 bytes of `s` (in slices: apply() has an argument limit).
  function utf8Base64(s) {
    var bytes = new TextEncoder().encode(s), bin = '';
    for (var i = 0; i < bytes.length; i += 0x8000) {
      bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(bin);
  }

  // The _base64 cell of a key: the exact bytes when the text is not the key itself (escapes)
  // or when the text cell was neutralised; else empty.
  function keyBase64(kt) {
    if (kt && kt.base64) return kt.base64;
    var t = keyText(kt);
    return FORMULA_START.test(t) ? utf8Base64(t) : '';
  }

  function fatal(msg) {
    var box = el('p', { class: 'note fatal', role: 'alert' }, msg);
    var top = document.querySelector('#summary .body');
    if (top) top.appendChild(box); else document.body.insertBefore(box, document.body.firstChild);
  }

  // ---------- tables: sortable by every column, paginated, CSV export ----------

  // col: {label, value(row) -> sortable number|string|null, render(row) -> node|string,
  //       num: right-aligned numeric, key: KeyText getter (adds a _base64 CSV column),
  //       csv(row) -> exported value (default value), title: header tooltip, cls: cell class}
  function table(opt) {
    var cols = opt.cols.filter(Boolean), rows = opt.rows;
    var wrap = el('div', { class: 'tbl', id: opt.id, 'data-rows': rows.length });
    var tools = el('div', { class: 'tbl-tools' }, el('span', { class: 'title' }, opt.title));
    wrap.appendChild(tools);
    if (opt.note) wrap.appendChild(el('p', { class: 'muted' }, opt.note));
    if (!rows.length) {
      wrap.appendChild(el('p', { class: 'empty' }, opt.empty || 'No rows.'));
      return wrap;
    }
    var order = rows.map(function (_, i) { return i; });
    var sortCol = -1, sortDir = 0, page = 0;
    var sizes = [10, 25, 100, 500];
    var pageSize = opt.pageSize || 25;
    var ths = [];
    var headRow = el('tr');
    cols.forEach(function (c, ci) {
      var th = el('th', { scope: 'col', class: c.num ? 'n' : null, 'aria-sort': 'none' },
        el('button', {
          type: 'button', class: 'sort', title: c.title || ('Sort by ' + c.label),
          onclick: function () {
            sortBy(ci, sortCol === ci ? -sortDir : (c.num ? -1 : 1));
          }
        }, c.label));
      ths.push(th);
      headRow.appendChild(th);
    });
    var tbody = el('tbody');
    var tbl = el('table', { 'aria-label': opt.title }, el('thead', null, headRow), tbody);
    wrap.appendChild(el('div', { class: 'tbl-scroll' }, tbl));

    var info = el('span', { class: 'muted num', 'aria-live': 'polite' });
    var first = el('button', { type: 'button', 'aria-label': 'First page', onclick: function () { go(0); } }, '\u00ab');
    var prev = el('button', { type: 'button', 'aria-label': 'Previous page', onclick: function () { go(page - 1); } }, '\u2039');
    var next = el('button', { type: 'button', 'aria-label': 'Next page', onclick: function () { go(page + 1); } }, '\u203a');
    var last = el('button', { type: 'button', 'aria-label': 'Last page', onclick: function () { go(Infinity); } }, '\u00bb');
    var sel = el('select', {
      'aria-label': 'Rows per page', onchange: function () { pageSize = Number(sel.value); go(0); }
    });
    sizes.forEach(function (s) { sel.appendChild(el('option', { value: s, selected: s === pageSize }, s + ' rows')); });
    var paged = rows.length > sizes[0];
    if (paged) tools.appendChild(el('span', { class: 'pager' }, first, prev, info, next, last, sel));
    else tools.appendChild(info);
    tools.appendChild(el('button', {
      type: 'button', 'aria-label': 'Download the table "' + opt.title + '" as CSV',
      'data-csv': opt.csv, onclick: function () { download(opt.csvFile, toCsv(), 'text/csv;charset=utf-8'); }
    }, 'CSV'));

    function go(p) {
      var pages = Math.max(1, Math.ceil(rows.length / pageSize));
      page = Math.max(0, Math.min(pages - 1, p));
      render();
    }

    function sortBy(ci, dir) {
      var get = cols[ci].value;
      var vals = new Array(rows.length);
      for (var i = 0; i < rows.length; i++) vals[i] = get(rows[i]);
      order.sort(function (a, b) {
        var va = vals[a], vb = vals[b];
        var na = va === null || va === undefined, nb = vb === null || vb === undefined;
        if (na || nb) return na === nb ? a - b : (na ? 1 : -1);
        var c = va < vb ? -1 : va > vb ? 1 : 0;
        return c * dir || a - b;
      });
      sortCol = ci; sortDir = dir;
      ths.forEach(function (th, k) {
        th.setAttribute('aria-sort', k === ci ? (dir > 0 ? 'ascending' : 'descending') : 'none');
      });
      go(0);
    }

    function render() {
      var start = page * pageSize, end = Math.min(rows.length, start + pageSize);
      var frag = document.createDocumentFragment();
      for (var k = start; k < end; k++) {
        var r = rows[order[k]];
        var tr = el('tr');
        for (var ci = 0; ci < cols.length; ci++) {
          var c = cols[ci];
          var cls = (c.num ? 'n ' : '') + (c.cls || '');
          tr.appendChild(el('td', { class: cls || null }, c.render ? c.render(r) : c.value(r)));
        }
        frag.appendChild(tr);
      }
      tbody.replaceChildren(frag);
      info.textContent = 'rows ' + fmtInt(start + 1) + '\u2013' + fmtInt(end) + ' of ' + fmtInt(rows.length);
      var pages = Math.ceil(rows.length / pageSize);
      first.disabled = prev.disabled = page === 0;
      next.disabled = last.disabled = page >= pages - 1;
    }

    function toCsv() {
      var head = [];
      cols.forEach(function (c) {
        var name = c.csvName || c.label;
        head.push(name);
        if (c.key) head.push(name + '_base64');
      });
      var lines = [head.map(csvField).join(',')];
      for (var k = 0; k < order.length; k++) {
        var r = rows[order[k]], f = [];
        for (var ci = 0; ci < cols.length; ci++) {
          var c = cols[ci];
          if (c.key) {
            var kt = c.key(r);
            f.push(csvField(keyText(kt)), csvField(keyBase64(kt)));
          } else {
            f.push(csvField(c.csv ? c.csv(r) : c.value(r)));
          }
        }
        lines.push(f.join(','));
      }
      return lines.join('\r\n') + '\r\n';
    }

    if (opt.sort) sortBy(opt.sort[0], opt.sort[1]); else render();
    return wrap;
  }

  // Column builders.
  function colText(label, get, extra) {
    return Object.assign({ label: label, value: get }, extra || {});
  }
  function colInt(label, get, extra) {
    return Object.assign({
      label: label, num: true, value: get,
      render: function (r) { var v = get(r); return v === null || v === undefined ? '\u2013' : fmtInt(v); }
    }, extra || {});
  }
  // A number that names something (db, slot): sortable as a number, shown without grouping.
  function colId(label, get, extra) {
    return Object.assign({
      label: label, num: true, value: get,
      render: function (r) { var v = get(r); return v === null || v === undefined ? '\u2013' : String(v); }
    }, extra || {});
  }
  function colBytes(label, get, extra) {
    return Object.assign({
      label: label, num: true, value: get, csvName: (extra && extra.csvName) || label,
      render: function (r) {
        var v = get(r);
        return el('span', { title: fmtInt(v) + ' bytes' }, fmtBytes(v));
      }
    }, extra || {});
  }
  function colPct(label, get, whole, withBar) {
    return {
      label: label, num: true, cls: withBar ? 'bar-cell' : null,
      value: function (r) { var w = whole(r); return w > 0 ? get(r) / w : null; },
      csv: function (r) { var w = whole(r); return w > 0 ? (100 * get(r) / w).toFixed(4) : ''; },
      render: function (r) {
        var t = fmtPct(get(r), whole(r));
        return withBar ? [t, bar(get(r), whole(r))] : t;
      }
    };
  }
  function colKey(label, get, extra) {
    return Object.assign({
      label: label, key: get, cls: 'keycell',
      value: function (r) { return keyText(get(r)); },
      render: function (r) { return keyNode(get(r)); }
    }, extra || {});
  }

  // ---------- the report ----------

  var dataEl = document.getElementById('report-data');
  var RAW = dataEl ? dataEl.textContent : '';
  var D;
  try {
    D = JSON.parse(RAW);
  } catch (e) {
    fatal('The report data embedded in this file is not valid JSON (' + e.message + ').');
    throw e;
  }

  var P = D.params || {};
  var T = D.totals || {};
  var TOT = agg(T);
  var TTL = agg(T.with_ttl);
  // The measure the tree, the rankings and every "Bytes" column use (memory.measure): mem_size
  // (the RAM a key takes once loaded) or rdb_size (its size in the RDB file). rdb_size is shown
  // beside it in every table when the measure is mem_size.
  var MK = (D.memory || {}).measure === 'rdb' ? 'rdb_size' : 'mem_size';
  var BYMEM = MK === 'mem_size';
  var BL = BYMEM ? 'Memory' : 'Bytes';
  var STEM = fileSafe('rdb_report_' + (D.cluster || '') + '_' + (D.batch || ''));
  var NODES = arr(D.prefix_tree && D.prefix_tree.nodes);
  var zoomToNode = null; // set by the prefix chart

  function body(id) { return document.querySelector('#' + id + ' .body'); }

  // The embedded text escapes <, >, &, U+2028 and U+2029 as \u003c etc. so no key can end the
  // script element. Undo exactly those escapes (an escaped backslash is kept as is), which gives
  // back serde_json's own text: the export is the same bytes as the CLI's --json file.
  function exactJson(raw) {
    return raw.replace(/\\(\\|u003c|u003e|u0026|u2028|u2029)/g, function (m, g) {
      return g === '\\' ? m : String.fromCharCode(parseInt(g.slice(1), 16));
    });
  }

  function renderSummary() {
    var b = body('summary');
    var cluster = String(D.cluster || '');
    document.title = 'rdbinsight report: ' + cluster + ' ' + (D.batch || '');
    document.getElementById('report-title').textContent = 'rdbinsight report: ' + cluster;
    var totals = el('div', { class: 'totals' });
    function card(id, label, exact, approx, title) {
      totals.appendChild(el('div', { class: 'total', id: id },
        el('div', { class: 'label' }, label),
        el('div', { class: 'exact', title: title || null }, exact,
          approx ? el('span', { class: 'approx' }, '(' + approx + ')') : null)));
    }
    // The rounded form only where it says something the exact one does not.
    function approxCount(n) { return n >= 1000 ? fmtShort(n) : null; }
    card('total-keys', 'Keys', fmtInt(TOT.keys) + ' ' + plural(TOT.keys, 'key', 'keys'), approxCount(TOT.keys));
    card('total-mem', 'Memory (mem_size)', fmtInt(TOT.mem_size) + ' ' + plural(TOT.mem_size, 'byte', 'bytes'),
      TOT.mem_size >= 1024 ? fmtBytes(TOT.mem_size) : null,
      'the RAM the keys take once a server loaded the RDB (see the memory model of each instance)');
    card('total-bytes', 'RDB bytes (rdb_size)', fmtInt(TOT.rdb_size) + ' ' + plural(TOT.rdb_size, 'byte', 'bytes'),
      TOT.rdb_size >= 1024 ? fmtBytes(TOT.rdb_size) : null);
    card('total-members', 'Members', fmtInt(TOT.member_count) + ' ' + plural(TOT.member_count, 'member', 'members'),
      approxCount(TOT.member_count), 'elements of lists, sets, sorted sets, streams; fields of hashes; 1 per string');
    card('total-instances', 'Instances', fmtInt(num(T.instances)) + ' ' + plural(num(T.instances), 'instance', 'instances'));
    card('total-dbs', 'Databases', fmtInt(num(T.dbs)) + ' ' + plural(num(T.dbs), 'db', 'dbs'));
    card('total-ttl', 'Keys with an expiry', fmtInt(TTL.keys) + ' ' + plural(TTL.keys, 'key', 'keys'),
      fmtPct(TTL.keys, TOT.keys) + ' of keys, ' + fmtPct(TTL[MK], TOT[MK]) + ' of ' + (BYMEM ? 'memory' : 'bytes'));

    var thr = P.prefix_threshold_pct !== undefined ? String(P.prefix_threshold_pct) : '?';
    var params = 'Prefix nodes hold at least ' + thr + '% of the bytes (' + fmtInt(num(P.prefix_threshold_bytes)) +
      ' bytes)' + (P.delimiter ? ', cut back to the last of the delimiter characters "' + P.delimiter + '"' : '') +
      '. Top lists: ' + fmtInt(num(P.top)) + ' keys. Big keys: strings over ' + fmtBytes(num(P.big_string_bytes)) +
      ', other types over ' + fmtBytes(num(P.big_other_bytes)) + ' or ' + fmtInt(num(P.big_members)) + ' members.';

    var exportBtn = el('button', {
      type: 'button', class: 'primary', id: 'export-json',
      onclick: function () { download(STEM + '.json', exactJson(RAW) + '\n', 'application/json'); }
    }, 'Download the report data (JSON)');

    append(b, [
      memoryAnswer(),
      changesLine(),
      el('p', { class: 'meta-line' }, 'Cluster ', el('strong', null, cluster), ' \u00b7 batch ',
        el('strong', { id: 'batch' }, String(D.batch || '')), ' \u00b7 made by ', String(D.generator || '?'),
        ' \u00b7 data format ', String(D.format_version)),
      totals,
      el('p', { class: 'note', id: 'rdb-size-note' }, BYMEM
        ? 'Sizes are mem_size: the bytes a key takes in RAM right after a server loaded the RDB (its objects, ' +
          'its entries in the keyspace dicts, each rounded to the allocator\'s size class); the keyspace tables, ' +
          'fragmentation and buffers are not in any key. The prefix tree and every ranking use mem_size; the ' +
          '"RDB bytes" columns show rdb_size, the serialized (often compressed) size in the file.'
        : 'Sizes are rdb_size: the bytes a key takes in the RDB file on disk (serialized, often compressed), ' +
          'not the memory (RAM) it uses in Redis. They compare keys and prefixes with each other; they do not ' +
          'add up to used_memory.'),
      TOT.keys === 0 ? el('p', { class: 'note', id: 'empty-batch' }, 'This batch holds no keys: every section below is empty.') : null,
      el('p', { class: 'muted' }, params),
      el('p', null, exportBtn, ' ', el('span', { class: 'muted' },
        'Every table also has a CSV button. Nothing in this page uses the network.'))
    ]);
    var unsafe = [TOT.keys, TOT.rdb_size, TOT.mem_size, TOT.member_count].some(function (v) { return !Number.isSafeInteger(v); });
    if (unsafe) {
      b.appendChild(el('p', { class: 'note' }, 'Some totals exceed 2^53 and are rounded in this view; the JSON download is exact.'));
    }
  }

  // The answer first: where the memory goes (mem_size by type, as one bar), each instance's
  // model and how the sums compare with the server's used-mem.
  function memoryAnswer() {
    var M = D.memory || {};
    var byMem = M.measure === 'mem';
    var total = byMem ? TOT.mem_size : TOT.rdb_size;
    var box = el('div', { class: 'mem-answer', id: 'mem-answer' });
    append(box, [
      el('p', { class: 'mem-total' }, byMem ? 'Memory (mem_size, RAM once loaded): ' : 'RDB bytes (rdb_size): ',
        el('strong', { id: 'mem-total' }, fmtInt(total) + ' bytes'), ' (' + fmtBytes(total) + ') in ' +
        fmtInt(TOT.keys) + ' ' + plural(TOT.keys, 'key', 'keys') +
        (byMem ? '; the RDB holds them in ' + fmtBytes(TOT.rdb_size) + ' (rdb_size)' : ''))
    ]);
    if (M.note) box.appendChild(el('p', { class: 'note', id: 'mem-note' }, String(M.note)));
    if (num(M.keys_without_mem_size) > 0 && byMem) {
      box.appendChild(el('p', { class: 'note', id: 'mem-missing' }, fmtInt(num(M.keys_without_mem_size)) + ' ' +
        plural(num(M.keys_without_mem_size), 'key has', 'keys have') + ' no mem_size (module values: no memory ' +
        'model applies) and count as 0 in every memory sum.'));
    }
    var bar = el('div', { class: 'mem-bar', id: 'mem-bar', role: 'img', 'aria-label': 'memory by type' });
    arr(D.by_type).forEach(function (r) {
      var v = byMem ? num(r.mem_size) : num(r.rdb_size);
      if (!(total > 0) || v <= 0) return;
      var pct = 100 * v / total;
      bar.appendChild(el('span', {
        class: 'seg', style: 'width:' + pct.toFixed(3) + '%;background:' + typeColorVar(r.type),
        title: r.type + ': ' + fmtBytes(v) + ' (' + fmtPct(v, total) + ')', 'data-type': r.type
      }, pct >= 8 ? r.type + ' ' + fmtPct(v, total) : ''));
    });
    if (total > 0) box.appendChild(bar);
    var insts = arr(M.instances);
    if (insts.length) {
      var t = el('table', { class: 'mem-models', id: 'mem-models' });
      t.appendChild(el('thead', null, el('tr', null, el('th', null, 'Instance'), el('th', null, 'Memory model'),
        el('th', { class: 'num' }, 'Σ mem_size'), el('th', { class: 'num' }, '+ keyspace tables'),
        el('th', { class: 'num' }, 'used-mem (RDB)'))));
      var tb = el('tbody');
      insts.forEach(function (r) {
        var model = !r.summary ? 'unknown (not stored with this batch)' :
          (r.model ? String(r.model) + (r.approximate ? ' (approximate)' : '') : 'none') +
          (r.rdb_server ? ' \u00b7 ' + r.rdb_server : '');
        tb.appendChild(el('tr', null, el('td', null, String(r.instance)), el('td', null, model),
          el('td', { class: 'num' }, fmtBytes(num(r.mem_size))),
          el('td', { class: 'num' }, typeof r.keys_and_tables === 'number' ? fmtBytes(r.keys_and_tables) : '\u2013'),
          el('td', { class: 'num' }, typeof r.used_mem === 'number' ? fmtBytes(r.used_mem) : '\u2013')));
      });
      t.appendChild(tb);
      box.appendChild(t);
    }
    return box;
  }

  // A sum of the measure; with mem_size, a group whose keys have none shows a dash (never a
  // silent 0) and a group where some have none says how many.
  function memCell(a) {
    var v = a[MK];
    if (BYMEM && a.mem_missing > 0) {
      if (a.mem_missing === a.keys) {
        return el('span', { title: 'no mem_size: no memory model applies to these keys (module values)' }, '\u2013');
      }
      return el('span', { title: fmtInt(v) + ' bytes; ' + fmtInt(a.mem_missing) + ' of the keys have no mem_size (counted as 0)' },
        fmtBytes(v) + '*');
    }
    return el('span', { title: fmtInt(v) + ' bytes' }, fmtBytes(v));
  }

  function shareCols(get) {
    return [
      colInt('Keys', function (r) { return get(r).keys; }),
      colPct('% keys', function (r) { return get(r).keys; }, function () { return TOT.keys; }),
      colBytes(BL, function (r) { return get(r)[MK]; }, { csvName: MK, render: function (r) { return memCell(get(r)); } }),
      colPct(BYMEM ? '% memory' : '% bytes', function (r) { return get(r)[MK]; }, function () { return TOT[MK]; }, true),
      BYMEM ? colBytes('RDB bytes', function (r) { return get(r).rdb_size; }, { csvName: 'rdb_size' }) : null,
      BYMEM ? colInt('Keys without mem_size', function (r) { return get(r).mem_missing; }, { csvName: 'mem_missing' }) : null,
      colInt('Members', function (r) { return get(r).member_count; }, { csvName: 'member_count' }),
      colBytes(BYMEM ? 'Avg memory/key' : 'Avg bytes/key', function (r) { var a = get(r); return a.keys ? Math.round(a[MK] / a.keys) : 0; },
        { csvName: 'avg_' + MK })
    ];
  }

  function renderBreakdowns() {
    var b = body('breakdowns');
    var typeCol = colText('Type', function (r) { return r.type; }, {
      csvName: 'type', cls: 'nowrap', render: function (r) { return [swatch(r.type), String(r.type)]; }
    });
    var byType = arr(D.by_type), byTE = arr(D.by_type_encoding), byDb = arr(D.by_db), byInst = arr(D.by_instance);
    var empty = 'No keys in this batch.';
    append(b, el('div', { class: 'grid2' },
      table({ id: 't-by-type', title: 'By type', csv: 'by_type', csvFile: STEM + '_by_type.csv', rows: byType, empty: empty,
        cols: [typeCol].concat(shareCols(agg)) }),
      table({ id: 't-by-db', title: 'By database', csv: 'by_db', csvFile: STEM + '_by_db.csv', rows: byDb, empty: empty,
        cols: [colId('DB', function (r) { return r.db; }, { csvName: 'db' })].concat(shareCols(agg)) }),
      table({ id: 't-by-type-encoding', title: 'By type and encoding', csv: 'by_type_encoding',
        csvFile: STEM + '_by_type_encoding.csv', rows: byTE, empty: empty,
        cols: [typeCol, colText('Encoding', function (r) { return r.encoding; }, { csvName: 'encoding' })].concat(shareCols(agg)) }),
      table({ id: 't-by-instance', title: 'By instance', csv: 'by_instance', csvFile: STEM + '_by_instance.csv',
        rows: byInst, empty: empty,
        cols: [colText('Instance', function (r) { return r.instance; }, { csvName: 'instance' })].concat(shareCols(agg)) })
    ));
  }

  // ---------- changes since the baseline (--baseline) ----------

  // Every view of the changes uses their own measure (changes.measure): mem_size when both
  // batches have it, else rdb_size for both (the note says why).
  var CH = D.changes && typeof D.changes === 'object' ? D.changes : null;
  var CK = CH && CH.measure === 'rdb' ? 'rdb_size' : 'mem_size';
  var CBL = CK === 'mem_size' ? 'Memory' : 'Bytes';
  var CPREFIXES = CH ? arr(CH.prefixes) : [];

  function fmtSigned(n) { n = num(n); return (n > 0 ? '+' : '') + fmtInt(n); }
  function fmtBytesSigned(n) { n = num(n); return (n > 0 ? '+' : n < 0 ? '-' : '') + fmtBytes(Math.abs(n)); }
  // The change relative to the baseline: "+12.3%", "new" when the baseline had nothing.
  function fmtChangePct(delta, base) {
    delta = num(delta); base = num(base);
    if (delta === 0) return '0%';
    if (base <= 0) return delta > 0 ? 'new' : '\u2013';
    var p = 100 * delta / base, a = Math.abs(p);
    return (p > 0 ? '+' : '-') + (a < 0.1 ? '<0.1' : a >= 1000 ? fmtInt(a) : a.toFixed(1)) + '%';
  }
  function deltaClass(v) { return v > 0 ? 'up' : v < 0 ? 'down' : null; }

  function colDelta(label, get, extra) {
    return Object.assign({
      label: label, num: true, value: get,
      render: function (r) { var v = get(r); return el('span', { class: deltaClass(v) }, fmtSigned(v)); }
    }, extra || {});
  }
  function colDeltaBytes(label, get, extra) {
    return Object.assign({
      label: label, num: true, value: get,
      render: function (r) {
        var v = get(r);
        return el('span', { class: deltaClass(v), title: fmtSigned(v) + ' bytes' }, fmtBytesSigned(v));
      }
    }, extra || {});
  }
  function colDeltaPct(label, getDelta, getBase, extra) {
    return Object.assign({
      label: label, num: true,
      value: function (r) { var b = getBase(r); return b > 0 ? getDelta(r) / b : (getDelta(r) > 0 ? Infinity : null); },
      csv: function (r) { var b = getBase(r); return b > 0 ? (100 * getDelta(r) / b).toFixed(4) : ''; },
      render: function (r) { return fmtChangePct(getDelta(r), getBase(r)); }
    }, extra || {});
  }

  // Columns of one group in both batches: r.current / r.baseline are Aggs, r.delta a Delta.
  function changeCols() {
    function c(r) { return agg(r.current); }
    function bs(r) { return agg(r.baseline); }
    function d(r) { return r.delta || {}; }
    return [
      colInt('Keys before', function (r) { return bs(r).keys; }, { csvName: 'baseline_keys' }),
      colInt('Keys now', function (r) { return c(r).keys; }, { csvName: 'keys' }),
      colDelta('\u0394 keys', function (r) { return num(d(r).keys); }, { csvName: 'delta_keys' }),
      colBytes(CBL + ' before', function (r) { return bs(r)[CK]; }, { csvName: 'baseline_' + CK }),
      colBytes(CBL + ' now', function (r) { return c(r)[CK]; }, { csvName: CK }),
      colDeltaBytes('\u0394 ' + CBL.toLowerCase(), function (r) { return num(d(r)[CK]); }, { csvName: 'delta_' + CK }),
      colDeltaPct('\u0394 %', function (r) { return num(d(r)[CK]); }, function (r) { return bs(r)[CK]; },
        { csvName: 'delta_' + CK + '_pct' }),
      colDelta('\u0394 members', function (r) { return num(d(r).member_count); }, { csvName: 'delta_member_count' })
    ];
  }

  // Prefix text -> index of the current tree's node (for links into the icicle chart).
  var nodeIndex = null;
  function nodeOfText(t) {
    if (!nodeIndex) {
      nodeIndex = Object.create(null);
      for (var k = 0; k < NODES.length; k++) nodeIndex[keyText(NODES[k].prefix)] = k;
    }
    var k2 = nodeIndex[t];
    return typeof k2 === 'number' ? k2 : -1;
  }
  // A changed prefix, as a link to its node in the chart when the current tree has it.
  function changePrefixNode(pc) {
    var label = keyNode(pc.prefix, '(empty prefix: all keys)');
    var k = nodeOfText(keyText(pc.prefix));
    if (k < 0) return label;
    return el('button', { type: 'button', class: 'link', title: 'Zoom the prefix chart to this prefix',
      onclick: function () { if (zoomToNode) zoomToNode(k); } }, label);
  }
  function prefixStatus(pc) {
    var c = agg(pc.current), b = agg(pc.baseline), d = num((pc.delta || {})[CK]);
    if (b.keys === 0 && c.keys > 0) return 'appeared';
    if (c.keys === 0 && b.keys > 0) return 'vanished';
    if (d > 0) return 'grew';
    if (d < 0) return 'shrank';
    return (pc.delta && (num(pc.delta.keys) || num(pc.delta.member_count))) ? 'changed' : 'unchanged';
  }

  // One line under the memory answer: the headline change, and a link to the section.
  function changesLine() {
    if (!CH) return null;
    var t = CH.totals || {}, d = t.delta || {}, base = agg(t.baseline);
    return el('p', { class: 'changes-line', id: 'changes-line' }, 'Since the baseline ', el('strong', null, String(CH.baseline || '?')),
      ': ', el('strong', { class: deltaClass(num(d[CK])) }, fmtBytesSigned(num(d[CK]))),
      ' (' + fmtChangePct(num(d[CK]), base[CK]) + ') of ' + (CK === 'mem_size' ? 'memory' : 'RDB bytes') + ', ' +
      fmtSigned(num(d.keys)) + ' ' + plural(Math.abs(num(d.keys)), 'key', 'keys') + '. ',
      el('a', { href: '#changes' }, 'What changed'));
  }

  function renderChanges() {
    if (!CH) return;
    var main = document.querySelector('main');
    var sec = el('section', { class: 'card', id: 'changes', 'aria-labelledby': 'h-changes' },
      el('h2', { id: 'h-changes' }, 'Changes since ', el('span', { id: 'changes-baseline' }, String(CH.baseline || '?'))),
      el('div', { class: 'body' }));
    main.insertBefore(sec, main.firstChild);
    var toc = document.querySelector('nav.toc ol');
    if (toc) toc.insertBefore(el('li', null, el('a', { href: '#changes' }, 'Changes')), toc.children[1] || null);
    var b = sec.querySelector('.body');
    var T2 = CH.totals || {}, cur = agg(T2.current), base = agg(T2.baseline), dl = T2.delta || {};
    var byMem = CK === 'mem_size';

    b.appendChild(el('p', null, 'This batch (' + String(D.batch || '?') + ') against the baseline batch ' +
      String(CH.baseline || '?') + ' of the same cluster. A key is its db and name, summed over the instances ' +
      'holding it, so a key that moved to another instance is the same key. ' +
      (byMem ? 'Sizes are mem_size (RAM once loaded) in both batches.' : 'Sizes are rdb_size (bytes in the RDB file) in both batches.')));
    if (CH.note) b.appendChild(el('p', { class: 'note', id: 'changes-note' }, String(CH.note)));

    var totals = el('div', { class: 'totals changes-totals', id: 'changes-totals' });
    function card(id, label, delta, before, now, unit, bytes) {
      totals.appendChild(el('div', { class: 'total', id: id },
        el('div', { class: 'label' }, label),
        el('div', { class: 'exact' }, el('span', { class: deltaClass(delta) }, fmtSigned(delta) + ' ' + unit),
          el('span', { class: 'approx' }, '(' + (bytes && Math.abs(delta) >= 1024 ? fmtBytesSigned(delta) + ', ' : '') +
            fmtChangePct(delta, before) + ')')),
        el('div', { class: 'sub' }, fmtInt(before) + ' \u2192 ' + fmtInt(now) + (bytes ? ' (' + fmtBytes(before) + ' \u2192 ' + fmtBytes(now) + ')' : ''))));
    }
    card('changes-keys', 'Keys', num(dl.keys), base.keys, cur.keys, 'keys');
    card('changes-bytes', byMem ? 'Memory (mem_size)' : 'RDB bytes (rdb_size)', num(dl[CK]), base[CK], cur[CK], 'bytes', true);
    if (byMem) card('changes-rdb', 'RDB bytes (rdb_size)', num(dl.rdb_size), base.rdb_size, cur.rdb_size, 'bytes', true);
    card('changes-members', 'Members', num(dl.member_count), base.member_count, cur.member_count, 'members');
    var ntd = (CH.no_ttl || {}).delta || {}, exd = (CH.expired || {}).delta || {};
    card('changes-no-ttl', CBL + ' without a TTL', num(ntd[CK]), agg((CH.no_ttl || {}).baseline)[CK],
      agg((CH.no_ttl || {}).current)[CK], 'bytes', true);
    card('changes-expired', 'Expired but stored', num(exd[CK]), agg((CH.expired || {}).baseline)[CK],
      agg((CH.expired || {}).current)[CK], 'bytes', true);
    b.appendChild(totals);
    var tc = num(CH.keys_type_changed);
    b.appendChild(el('p', { class: 'muted', id: 'changes-type-changed' }, fmtInt(tc) + ' ' + plural(tc, 'key', 'keys') +
      ' changed type (present in both batches with a different type). Prefix trees: nodes hold at least ' +
      fmtInt(num(CH.baseline_prefix_threshold_bytes)) + ' bytes in the baseline, ' + fmtInt(num(CH.current_prefix_threshold_bytes)) +
      ' bytes now (each batch\'s own threshold).'));

    // Top movers: the biggest growths to the right, the biggest shrinks to the left.
    b.appendChild(el('h3', null, 'Top movers'));
    b.appendChild(el('p', { class: 'muted' }, 'The 10 prefixes that grew most and the 10 that shrank most, by ' +
      (byMem ? 'memory' : 'RDB bytes') + ' (the empty prefix, all keys, is left out: its change is the total above). ' +
      'Click one to zoom the prefix chart to it.'));
    b.appendChild(moversChart());

    // Per group.
    var groups = [];
    function addGroup(kind, r, name) { groups.push(Object.assign({ _kind: kind, _name: name }, r)); }
    addGroup('all', T2, 'all keys');
    if (CH.no_ttl) addGroup('expiry', CH.no_ttl, 'without a TTL');
    if (CH.expired) addGroup('expiry', CH.expired, 'expired but stored');
    arr(CH.by_type).forEach(function (r) { addGroup('type', r, String(r.name)); });
    arr(CH.by_db).forEach(function (r) { addGroup('db', r, 'db ' + r.name); });
    arr(CH.by_instance).forEach(function (r) { addGroup('instance', r, String(r.name)); });
    b.appendChild(table({
      id: 't-changes-groups', title: 'By type, db and instance', csv: 'changes_groups', csvFile: STEM + '_changes_groups.csv',
      rows: groups, pageSize: 25,
      cols: [
        colText('Group', function (r) { return r._kind; }, { csvName: 'group' }),
        colText('Name', function (r) { return r._name; }, { csvName: 'name', csv: function (r) { return r._kind === 'db' ? r.name : r._name; } })
      ].concat(changeCols())
    }));

    // Prefixes.
    var prefixCols = function (ranked) {
      return [
        ranked ? colInt('#', function (r) { return r._rank; }, { csvName: 'rank' }) : null,
        colKey('Prefix', function (r) { return r.prefix; }, { csvName: 'prefix', render: changePrefixNode }),
        colText('Change', prefixStatus, { csvName: 'status' })
      ].concat(changeCols());
    };
    b.appendChild(el('h3', null, 'Prefixes'));
    b.appendChild(table({
      id: 't-changes-prefixes', title: 'Prefixes in either batch', csv: 'changes_prefixes',
      csvFile: STEM + '_changes_prefixes.csv', rows: CPREFIXES, cols: prefixCols(false), sort: [7, -1],
      note: 'Every node of either batch\'s prefix tree, with its keys in both batches. Prefixes nest: a prefix\'s ' +
        'numbers include those of the longer prefixes below it. Click a prefix to zoom the chart to it.',
      empty: 'No prefix nodes in either batch.'
    }));
    function rankedRows(list) {
      var out = [];
      arr(list).forEach(function (i, r) {
        var pc = typeof i === 'number' ? CPREFIXES[i] : null;
        if (pc) out.push(Object.assign({ _rank: r + 1 }, pc));
      });
      return out;
    }
    var lists = [
      ['t-changes-growth', 'Biggest growth', CH.growth, 'changes_growth', 'No prefix grew.'],
      ['t-changes-relative', 'Biggest relative growth', CH.relative_growth, 'changes_relative_growth',
        'No prefix holding at least the baseline\'s threshold grew.'],
      ['t-changes-appeared', 'Appeared (no keys in the baseline)', CH.appeared, 'changes_appeared', 'No prefix appeared.'],
      ['t-changes-vanished', 'Vanished (no keys now)', CH.vanished, 'changes_vanished', 'No prefix vanished.'],
      ['t-changes-shrink', 'Biggest shrink', CH.shrink, 'changes_shrink', 'No prefix shrank.']
    ];
    var grid = el('div', { class: 'grid2' });
    lists.forEach(function (l) {
      grid.appendChild(table({ id: l[0], title: l[1], csv: l[3], csvFile: STEM + '_' + l[3] + '.csv',
        rows: rankedRows(l[2]), cols: prefixCols(true), empty: l[4], pageSize: 10 }));
    });
    b.appendChild(grid);

    // Keys.
    function keyChangeCols() {
      return [
        colInt('#', function (r) { return r._rank; }, { csvName: 'rank' }),
        colKey('Key', function (r) { return r.key; }, { csvName: 'key' }),
        colId('DB', function (r) { return num(r.db); }, { csvName: 'db' }),
        colText('Type', function (r) { return r.type; }, {
          csvName: 'type', cls: 'nowrap',
          render: function (r) {
            return [swatch(r.type), String(r.type), r.type_changed
              ? el('span', { class: 'muted', title: 'the type changed since the baseline' }, ' (was ' + String(r.baseline_type) + ')')
              : null];
          }
        }),
        colText('Type before', function (r) { return typeof r.baseline_type === 'string' ? r.baseline_type : null; },
          { csvName: 'baseline_type', render: function (r) { return typeof r.baseline_type === 'string' ? r.baseline_type : 'new'; } }),
        colBytes(CBL + ' before', function (r) { return num(r.baseline); }, { csvName: 'baseline_' + CK }),
        colBytes(CBL + ' now', function (r) { return num(r.current); }, { csvName: CK }),
        colDeltaBytes('\u0394 ' + CBL.toLowerCase(), function (r) { return num(r.delta); }, { csvName: 'delta_' + CK }),
        colDeltaPct('\u0394 %', function (r) { return num(r.delta); }, function (r) { return num(r.baseline); },
          { csvName: 'delta_' + CK + '_pct' })
      ];
    }
    b.appendChild(el('h3', null, 'Keys'));
    append(b, el('div', { class: 'grid2' },
      table({ id: 't-changes-key-growth', title: 'Keys that grew most', csv: 'changes_key_growth',
        csvFile: STEM + '_changes_key_growth.csv', rows: ranked(CH.top_key_growth), cols: keyChangeCols(),
        empty: 'No key grew.', pageSize: 10 }),
      table({ id: 't-changes-new-keys', title: 'Biggest new keys', csv: 'changes_new_keys',
        csvFile: STEM + '_changes_new_keys.csv', rows: ranked(CH.top_new_keys), cols: keyChangeCols(),
        empty: 'No new keys.', pageSize: 10 })));
    b.appendChild(el('p', { class: 'muted' }, 'Lists stop at --top ' + fmtInt(num(P.top)) + '. A key\'s size is summed over ' +
      'the instances holding it in each batch.'));
  }

  // A diverging bar chart of plain elements: growth to the right of the axis, shrink to the
  // left, bar lengths on one scale (the biggest move fills its half).
  function moversChart() {
    var MOVERS = 10;
    // The empty prefix (all keys) is left out: its change is the total above, and it would
    // dwarf every other bar.
    function notAll(i) { return !(CPREFIXES[i] && keyText(CPREFIXES[i].prefix) === ''); }
    var up = arr(CH.growth).filter(notAll).slice(0, MOVERS), down = arr(CH.shrink).filter(notAll).slice(0, MOVERS).reverse();
    var idx = up.concat(down).filter(function (i) { return typeof i === 'number' && CPREFIXES[i]; });
    if (!idx.length) return el('p', { class: 'empty', id: 'changes-movers' }, 'No prefix grew or shrank.');
    var max = 0;
    idx.forEach(function (i) { max = Math.max(max, Math.abs(num((CPREFIXES[i].delta || {})[CK]))); });
    var box = el('div', { class: 'movers', id: 'changes-movers', role: 'img',
      'aria-label': 'Top movers: the prefixes that grew most (bars to the right) and shrank most (bars to the left), the empty prefix (all keys) left out, by ' +
        (CK === 'mem_size' ? 'memory' : 'RDB bytes') + '. The tables below list the same prefixes.' });
    box.appendChild(el('div', { class: 'mv-head muted' }, 'Prefix'));
    box.appendChild(el('div', { class: 'mv-head muted mv-neg' }, '\u2190 shrank'));
    box.appendChild(el('div', { class: 'mv-head muted mv-pos' }, 'grew \u2192'));
    box.appendChild(el('div', { class: 'mv-head muted n' }, '\u0394 ' + CBL.toLowerCase()));
    idx.forEach(function (i) {
      var pc = CPREFIXES[i], d = num((pc.delta || {})[CK]);
      var w = max > 0 ? Math.max(0.5, 100 * Math.abs(d) / max) : 0;
      var fill = el('span', { class: d > 0 ? 'mv-bar up-bar' : 'mv-bar down-bar' });
      fill.style.width = w.toFixed(2) + '%';
      var tip = fmtSigned(d) + ' bytes (' + fmtChangePct(d, agg(pc.baseline)[CK]) + '): ' + fmtBytes(agg(pc.baseline)[CK]) +
        ' \u2192 ' + fmtBytes(agg(pc.current)[CK]);
      box.appendChild(el('div', { class: 'mv-label' }, changePrefixNode(pc)));
      box.appendChild(el('div', { class: 'mv-neg', title: tip }, d < 0 ? fill : null));
      box.appendChild(el('div', { class: 'mv-pos', title: tip }, d > 0 ? fill : null));
      box.appendChild(el('div', { class: 'n mv-val ' + (deltaClass(d) || ''), 'data-delta': String(d), title: tip }, fmtBytesSigned(d)));
    });
    return box;
  }

  // ---------- prefix tree: icicle chart on a canvas + table ----------

  function renderPrefixes() {
    var b = body('prefixes');
    var n = NODES.length;
    append(b, el('p', null,
      'A prefix is a node when the keys starting with it hold at least ' + fmtInt(num(P.prefix_threshold_bytes)) +
      ' bytes (' + (P.prefix_threshold_pct !== undefined ? P.prefix_threshold_pct : '?') + '% of all) and it is where those keys ' +
      'stop sharing bytes (a branching point, or a whole key). Each node holds the keys of its children and ' +
      'possibly more; widths are bytes. ',
      el('strong', { id: 'node-count' }, fmtInt(n) + ' prefix ' + plural(n, 'node', 'nodes')), '.'));
    if (!n) {
      b.appendChild(el('p', { class: 'empty' }, TOT[MK] > 0
        ? 'No prefix nodes in the data.'
        : 'No prefix nodes: the batch holds no bytes.'));
      return;
    }

    // The tree as flat arrays. Nodes come in prefix order (a pre-order); index n is a virtual
    // base used only if the data has more than one root.
    var N = n + 1;
    var parent = new Int32Array(N).fill(-1);
    var bytes = new Float64Array(N);
    var depth = new Int32Array(N);
    var childCount = new Int32Array(N);
    var roots = [];
    var i;
    for (i = 0; i < n; i++) {
      bytes[i] = num(NODES[i][MK]);
      var p = NODES[i].parent;
      if (typeof p === 'number' && p >= 0 && p < i && Math.floor(p) === p) parent[i] = p; else roots.push(i);
    }
    var base = roots.length === 1 ? roots[0] : n;
    if (base === n) {
      roots.forEach(function (r) { parent[r] = n; bytes[n] += bytes[r]; });
    }
    for (i = 0; i < N; i++) if (parent[i] >= 0) childCount[parent[i]]++;
    var childStart = new Int32Array(N + 1);
    for (i = 0; i < N; i++) childStart[i + 1] = childStart[i] + childCount[i];
    var fillAt = childStart.slice(0, N);
    var kids = new Int32Array(childStart[N]);
    for (i = 0; i < n; i++) if (parent[i] >= 0) kids[fillAt[parent[i]]++] = i;
    for (i = 0; i < n; i++) depth[i] = parent[i] < 0 ? 0 : (parent[i] === n ? 1 : depth[parent[i]] + 1);

    var dom = new Int8Array(N).fill(-2);
    function domType(k) {
      if (dom[k] !== -2) return dom[k];
      var best = -1, bv = 0, tb = k < n ? (NODES[k][MK + '_by_type'] || {}) : {};
      for (var t = 0; t < TYPES.length; t++) { var v = num(tb[TYPES[t]]); if (v > bv) { bv = v; best = t; } }
      dom[k] = best;
      return best;
    }
    function nodeAgg(k) { return k < n ? agg(NODES[k]) : TOT; }
    function fullText(k) { return k < n ? keyText(NODES[k].prefix) : ''; }
    function fullLabel(k) {
      if (k === n) return '(all keys)';
      var t = fullText(k);
      return t === '' ? '(empty prefix: all keys)' : t;
    }
    // The part of the prefix below its parent's (the chart is narrow; the tooltip has it all).
    function shortLabel(k) {
      if (k === n) return '(all keys)';
      var t = fullText(k), p = parent[k];
      if (p >= 0 && p !== n) {
        var pt = fullText(p);
        if (pt !== '' && t.length > pt.length && t.slice(0, pt.length) === pt) return '\u2026' + t.slice(pt.length);
      }
      return t === '' ? '(empty prefix)' : t;
    }

    // With --baseline: each node's change, matched by prefix to the changes' prefixes (a node
    // of the current tree is one of them when both use the same measure).
    var growth = new Float64Array(N), growthBase = new Float64Array(N), hasGrowth = new Uint8Array(N), growthMax = 0, colourMode = 'type';
    if (CH) {
      var byText = Object.create(null);
      CPREFIXES.forEach(function (pc) { byText[keyText(pc.prefix)] = pc; });
      for (i = 0; i < n; i++) {
        var pc = byText[keyText(NODES[i].prefix)];
        if (!pc) continue;
        hasGrowth[i] = 1;
        growth[i] = num((pc.delta || {})[CK]);
        growthBase[i] = agg(pc.baseline)[CK];
        if (parent[i] >= 0 && parent[i] !== n) growthMax = Math.max(growthMax, Math.abs(growth[i]));
      }
    }
    function hexRgb(h) {
      var m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(h);
      return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : null;
    }
    // bg blended towards c by t (0..1), as an rgb() colour.
    function mix(bg, c, t) {
      var a = hexRgb(bg), b = hexRgb(c);
      if (!a || !b) return c;
      return 'rgb(' + [0, 1, 2].map(function (j) { return Math.round(a[j] + (b[j] - a[j]) * t); }).join(',') + ')';
    }

    var ROW_H = 24, MAX_ROWS = 32, MIN_W = 1;
    var focus = base, hover = -1, rows = [], W = 0, matches = null, matchedDrawn = 0;
    var box = el('div', { class: 'chart-box' });
    var canvas = el('canvas', {
      id: 'prefix-canvas', tabindex: '0', role: 'img',
      'aria-label': 'Icicle chart of the prefix tree. Click a node to zoom in, click the top row to zoom out; ' +
        'Escape zooms out. The table below lists the same nodes.'
    });
    box.appendChild(canvas);
    var tip = document.getElementById('chart-tip');
    var crumbs = el('ol', { class: 'crumbs', id: 'chart-crumbs', 'aria-label': 'Zoom path' });
    var focusInfo = el('p', { id: 'chart-focus', 'aria-live': 'polite' });
    var search = el('input', {
      type: 'search', id: 'prefix-search', placeholder: 'search prefixes (substring, any case)',
      'aria-label': 'Search prefixes', autocomplete: 'off', spellcheck: 'false'
    });
    var searchCount = el('span', { id: 'search-count', class: 'muted', 'aria-live': 'polite' });
    var results = el('ol', { class: 'search-results', id: 'search-results' });
    var outBtn = el('button', { type: 'button', id: 'zoom-out', onclick: zoomOut }, 'Zoom out');
    var resetBtn = el('button', { type: 'button', id: 'zoom-reset', onclick: function () { zoomTo(base); } }, 'Whole tree');
    var legend = el('div', { class: 'legend', id: 'chart-legend', 'aria-label': 'Colour: the type holding most of a node\'s bytes' });
    TYPES.forEach(function (t) {
      if (arr(D.by_type).some(function (r) { return r.type === t; })) legend.appendChild(el('span', null, swatch(t), t));
    });
    var hl = el('span', null);
    var hlSw = el('span', { class: 'swatch', 'aria-hidden': 'true' });
    hlSw.style.background = 'var(--match)';
    append(hl, [hlSw, 'search match']);
    legend.appendChild(hl);

    var growthLegend = el('div', { class: 'legend', id: 'growth-legend', hidden: true,
      'aria-label': 'Colour: the change of a node\'s bytes since the baseline' });
    [['--grow', 'grew (darker: more)'], ['--shrink', 'shrank'], ['--t-none', 'unchanged, or not a prefix of the changes']].forEach(function (g) {
      var sw = el('span', { class: 'swatch', 'aria-hidden': 'true' });
      sw.style.background = 'var(' + g[0] + ')';
      growthLegend.appendChild(el('span', null, sw, g[1]));
    });
    var TYPE_NOTE = 'Colour: the type holding most of a node\'s bytes.';
    var GROWTH_NOTE = 'Colour: the change of the node\'s bytes since the baseline, growth warm and shrink cool, ' +
      'darker for more (relative to the biggest change below the top node); widths are still today\'s bytes.';
    var colourNote = el('span', { id: 'chart-colour-note' }, TYPE_NOTE);
    var colourSel = null;
    if (CH) {
      colourSel = el('select', { id: 'chart-colour', 'aria-label': 'Colour the chart by', onchange: function () {
        colourMode = colourSel.value;
        legend.hidden = colourMode !== 'type';
        growthLegend.hidden = colourMode !== 'growth';
        colourNote.textContent = colourMode === 'growth' ? GROWTH_NOTE : TYPE_NOTE;
        canvas.setAttribute('data-colour', colourMode);
        paint();
      } }, el('option', { value: 'type' }, 'Colour: type'), el('option', { value: 'growth' }, 'Colour: change since the baseline'));
    }
    canvas.setAttribute('data-colour', colourMode);
    append(b, [
      el('div', { class: 'chart-tools' }, search, searchCount, outBtn, resetBtn, colourSel),
      crumbs, focusInfo, box, legend, growthLegend, results,
      el('p', { class: 'muted' }, colourNote, ' Nodes narrower than a ' +
        'pixel are not drawn (zoom in, search, or use the table). Rows deeper than ' + MAX_ROWS +
        ' levels below the zoomed node are not drawn.')
    ]);

    function layout() {
      W = Math.max(200, Math.floor(box.clientWidth || 800));
      rows = [];
      var stack = [[focus, 0, W, 0]];
      while (stack.length) {
        var it = stack.pop();
        var k = it[0], x = it[1], w = it[2], d = it[3];
        (rows[d] || (rows[d] = [])).push({ n: k, x: x, w: w });
        if (d + 1 >= MAX_ROWS || bytes[k] <= 0) continue;
        var items = [], cx = x;
        for (var c = childStart[k]; c < childStart[k + 1]; c++) {
          var ch = kids[c], cw = w * bytes[ch] / bytes[k];
          if (cw >= MIN_W) items.push([ch, cx, cw, d + 1]);
          cx += cw;
        }
        for (var q = items.length - 1; q >= 0; q--) stack.push(items[q]);
      }
    }

    function paint() {
      var dpr = window.devicePixelRatio || 1;
      var H = Math.max(1, rows.length) * ROW_H;
      canvas.width = Math.round(W * dpr);
      canvas.height = Math.round(H * dpr);
      canvas.style.height = H + 'px';
      var ctx = canvas.getContext('2d');
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      var cs = getComputedStyle(document.documentElement);
      var colors = TYPES.map(function (t) { return cs.getPropertyValue('--t-' + t).trim(); });
      var noneColor = cs.getPropertyValue('--t-none').trim();
      var matchColor = cs.getPropertyValue('--match').trim();
      var textColor = cs.getPropertyValue('--chart-text').trim();
      var growColor = cs.getPropertyValue('--grow').trim(), shrinkColor = cs.getPropertyValue('--shrink').trim();
      var bgColor = cs.getPropertyValue('--chart-bg').trim();
      function growthFill(k) {
        var g = growth[k];
        if (!hasGrowth[k] || g === 0) return noneColor;
        var t = growthMax > 0 ? Math.min(1, Math.sqrt(Math.abs(g) / growthMax)) : 1;
        return mix(bgColor, g > 0 ? growColor : shrinkColor, 0.25 + 0.75 * t);
      }
      ctx.fillStyle = cs.getPropertyValue('--chart-bg').trim();
      ctx.fillRect(0, 0, W, H);
      ctx.font = '12px ' + cs.getPropertyValue('--mono');
      ctx.textBaseline = 'middle';
      var cw = ctx.measureText('M').width || 7;
      var drawn = 0;
      matchedDrawn = 0;
      for (var d = 0; d < rows.length; d++) {
        var y = d * ROW_H;
        var row = rows[d];
        for (var j = 0; j < row.length; j++) {
          var r = row[j], k = r.n, w = Math.max(1, r.w - 1);
          var isMatch = matches !== null && matches[k] === 1;
          drawn++;
          if (isMatch) matchedDrawn++;
          ctx.globalAlpha = matches !== null && !isMatch ? 0.3 : 1;
          var t = domType(k);
          ctx.fillStyle = isMatch ? matchColor : colourMode === 'growth' ? growthFill(k) : (t >= 0 ? colors[t] : noneColor);
          ctx.fillRect(r.x, y, w, ROW_H - 1);
          if (d % 2 === 1 && !isMatch) {
            ctx.fillStyle = 'rgba(0,0,0,0.07)';
            ctx.fillRect(r.x, y, w, ROW_H - 1);
          }
          if (k === hover) {
            ctx.globalAlpha = 1;
            ctx.strokeStyle = textColor;
            ctx.lineWidth = 2;
            ctx.strokeRect(r.x + 1, y + 1, Math.max(0, w - 2), ROW_H - 3);
          }
          if (w > cw * 2.5) {
            var label = d === 0
              ? fullLabel(k) + '   ' + fmtBytes(bytes[k]) + ', ' + fmtInt(nodeAgg(k).keys) + ' keys'
              : shortLabel(k);
            var fit = Math.floor((w - 6) / cw);
            if (label.length > fit) label = label.slice(0, Math.max(1, fit - 1)) + '\u2026';
            ctx.fillStyle = textColor;
            ctx.fillText(label, r.x + 3, y + ROW_H / 2);
          }
        }
      }
      ctx.globalAlpha = 1;
      canvas.setAttribute('data-drawn-nodes', String(drawn));
      canvas.setAttribute('data-highlighted', String(matchedDrawn));
    }

    function hitTest(ev) {
      var rect = canvas.getBoundingClientRect();
      var x = ev.clientX - rect.left, y = ev.clientY - rect.top;
      var row = rows[Math.floor(y / ROW_H)];
      if (!row || x < 0) return -1;
      var lo = 0, hi = row.length - 1, found = -1;
      while (lo <= hi) {
        var mid = (lo + hi) >> 1;
        if (row[mid].x <= x) { found = mid; lo = mid + 1; } else hi = mid - 1;
      }
      if (found < 0) return -1;
      var r = row[found];
      return x < r.x + r.w ? r.n : -1;
    }

    function renderCrumbs() {
      var path = [];
      for (var k = focus; k >= 0; k = parent[k]) path.unshift(k);
      crumbs.replaceChildren();
      // A deep node keeps the path short: the root, then its last ancestors.
      var CRUMBS = 10;
      if (path.length > CRUMBS) {
        var skipped = path.length - CRUMBS + 1;
        path = [path[0], -1].concat(path.slice(path.length - CRUMBS + 2));
        path.skipped = skipped;
      }
      path.forEach(function (k, idx) {
        if (k === -1) {
          crumbs.appendChild(el('li', { class: 'muted' }, '\u2026 ' + fmtInt(path.skipped) + ' levels'));
          return;
        }
        var current = k === focus;
        crumbs.appendChild(el('li', null, el('button', {
          type: 'button', title: fullLabel(k), 'aria-current': current ? 'true' : null,
          onclick: function () { zoomTo(k); }
        }, idx === 0 ? fullLabel(k) : shortLabel(k))));
      });
      var a = nodeAgg(focus);
      var below = childStart[N] ? countBelow(focus) : 0;
      focusInfo.replaceChildren('Showing ', keyNode(focus < n ? NODES[focus].prefix : null, fullLabel(focus)), ': ' +
        fmtInt(a.keys) + ' keys, ' + fmtInt(a[MK]) + ' bytes (' + fmtBytes(a[MK]) + ', ' +
        fmtPct(a[MK], TOT[MK]) + ' of all bytes), ' + fmtInt(below) + ' prefix ' +
        plural(below, 'node', 'nodes') + ' below.');
      outBtn.disabled = parent[focus] < 0;
      canvas.setAttribute('data-focus', String(focus));
    }

    function countBelow(k) {
      var count = 0, st = [k];
      while (st.length) {
        var x = st.pop();
        for (var c = childStart[x]; c < childStart[x + 1]; c++) { count++; st.push(kids[c]); }
      }
      return count;
    }

    function zoomTo(k) {
      if (k < 0 || k >= N) return;
      focus = k;
      hover = -1;
      tip.hidden = true;
      layout();
      paint();
      renderCrumbs();
    }
    function zoomOut() { if (parent[focus] >= 0) zoomTo(parent[focus]); }
    zoomToNode = function (k) {
      zoomTo(k);
      box.scrollIntoView({ block: 'nearest' });
    };

    function showTip(k, ev) {
      var a = nodeAgg(k);
      var nt = k < n ? agg(NODES[k].no_ttl) : null;
      var pa = parent[k] >= 0 ? nodeAgg(parent[k]) : null;
      var rowsT = [
        ['Keys', fmtInt(a.keys) + ' (' + fmtPct(a.keys, TOT.keys) + ' of all)'],
        ['Bytes', fmtInt(a[MK]) + ' (' + fmtBytes(a[MK]) + ', ' + fmtPct(a[MK], TOT[MK]) + ' of all' +
          (pa ? ', ' + fmtPct(a[MK], pa[MK]) + ' of parent' : '') + ')'],
        ['Members', fmtInt(a.member_count)]
      ];
      if (CH && hasGrowth[k]) {
        rowsT.push(['Change', fmtSigned(growth[k]) + ' bytes (' + fmtBytesSigned(growth[k]) + ', ' +
          fmtChangePct(growth[k], growthBase[k]) + ') since the baseline']);
      }
      if (nt) rowsT.push(['No TTL', fmtInt(nt.keys) + ' keys, ' + fmtBytes(nt[MK]) + ' (' + fmtPct(nt[MK], a[MK]) + ' of bytes)']);
      if (k < n) {
        var tb = NODES[k][MK + '_by_type'] || {};
        TYPES.forEach(function (t) { if (num(tb[t]) > 0) rowsT.push([t, fmtBytes(num(tb[t])) + ' (' + fmtPct(num(tb[t]), a[MK]) + ')']); });
        rowsT.push(['Prefix', fmtInt(num(NODES[k].prefix_len)) + ' bytes' + (NODES[k].is_key ? ', also a key' : '')]);
      }
      rowsT.push(['Below', fmtInt(childStart[k + 1] - childStart[k]) + ' child nodes']);
      var tb2 = el('table');
      rowsT.forEach(function (r) { tb2.appendChild(el('tr', null, el('td', { class: 'muted' }, r[0]), el('td', { class: 'num' }, r[1]))); });
      tip.replaceChildren(keyNode(k < n ? NODES[k].prefix : null, fullLabel(k)), tb2,
        el('div', { class: 'muted' }, k === focus ? (parent[k] >= 0 ? 'click: zoom out' : '') : 'click: zoom in'));
      tip.hidden = false;
      var tw = tip.offsetWidth, th = tip.offsetHeight;
      var x = ev.clientX + 14, y = ev.clientY + 14;
      if (x + tw > window.innerWidth - 4) x = Math.max(4, ev.clientX - tw - 14);
      if (y + th > window.innerHeight - 4) y = Math.max(4, ev.clientY - th - 14);
      tip.style.left = x + 'px';
      tip.style.top = y + 'px';
    }

    canvas.addEventListener('mousemove', function (ev) {
      var k = hitTest(ev);
      if (k !== hover) { hover = k; paint(); }
      if (k >= 0) showTip(k, ev); else tip.hidden = true;
    });
    canvas.addEventListener('mouseleave', function () {
      tip.hidden = true;
      if (hover !== -1) { hover = -1; paint(); }
    });
    canvas.addEventListener('click', function (ev) {
      var k = hitTest(ev);
      if (k < 0) return;
      if (k === focus) zoomOut(); else zoomTo(k);
    });
    canvas.addEventListener('keydown', function (ev) {
      if (ev.key === 'Escape' || ev.key === 'Backspace') { zoomOut(); ev.preventDefault(); }
      else if (ev.key === 'Home') { zoomTo(base); ev.preventDefault(); }
    });

    var lower = null, searchTimer = 0, lastQuery = '';
    function runSearch() {
      var q = search.value.trim().toLowerCase();
      // 'change' follows 'input' on blur: rebuilding the list then would swallow the click
      // that caused the blur.
      if (q === lastQuery) return;
      lastQuery = q;
      results.replaceChildren();
      if (!q) {
        matches = null;
        searchCount.textContent = '';
        paint();
        return;
      }
      if (!lower) lower = NODES.map(function (x) { return keyText(x.prefix).toLowerCase(); });
      matches = new Uint8Array(N);
      var found = [];
      for (var k = 0; k < n; k++) if (lower[k].indexOf(q) >= 0) { matches[k] = 1; found.push(k); }
      found.sort(function (a, c) { return bytes[c] - bytes[a] || a - c; });
      paint();
      var listed = Math.min(found.length, 100);
      searchCount.textContent = fmtInt(found.length) + ' matching ' + plural(found.length, 'node', 'nodes') +
        (found.length ? ', ' + fmtInt(matchedDrawn) + ' wide enough to show in the current view' : '') +
        (found.length > listed ? '; the ' + listed + ' largest listed' : '');
      for (var j = 0; j < listed; j++) {
        (function (k) {
          var a = nodeAgg(k);
          results.appendChild(el('li', null, el('button', {
            type: 'button', class: 'link', onclick: function () { zoomTo(k); }
          }, keyNode(NODES[k].prefix, fullLabel(k))), ' \u2014 ' + fmtBytes(a[MK]) + ' in ' + fmtInt(a.keys) + ' keys'));
        })(found[j]);
      }
    }
    search.addEventListener('input', function () {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(runSearch, 150);
    });
    search.addEventListener('change', function () { clearTimeout(searchTimer); runSearch(); });
    search.addEventListener('keydown', function (ev) {
      if (ev.key === 'Enter') { clearTimeout(searchTimer); runSearch(); }
    });

    if (typeof ResizeObserver === 'function') {
      new ResizeObserver(function () {
        var w = Math.max(200, Math.floor(box.clientWidth || 800));
        if (w !== W) { layout(); paint(); }
      }).observe(box);
    }
    if (window.matchMedia) {
      var mq = window.matchMedia('(prefers-color-scheme: dark)');
      if (mq.addEventListener) mq.addEventListener('change', paint);
    }

    layout();
    paint();
    renderCrumbs();

    // The same nodes as a table.
    var present = TYPES.filter(function (t) {
      for (var k = 0; k < n; k++) if (num((NODES[k][MK + '_by_type'] || {})[t]) > 0) return true;
      return false;
    });
    var idx = [];
    for (i = 0; i < n; i++) idx.push(i);
    var cols = [
      colKey('Prefix', function (k) { return NODES[k].prefix; }, {
        csvName: 'prefix',
        render: function (k) {
          return el('button', { type: 'button', class: 'link', title: 'Zoom the chart to this prefix',
            onclick: function () { zoomToNode(k); } }, keyNode(NODES[k].prefix, fullLabel(k)));
        }
      }),
      colInt('Prefix bytes', function (k) { return num(NODES[k].prefix_len); }, { csvName: 'prefix_len' }),
      colInt('Depth', function (k) { return depth[k]; }, { csvName: 'depth' }),
      colInt('Children', function (k) { return childStart[k + 1] - childStart[k]; }, { csvName: 'children' }),
      colInt('Keys', function (k) { return num(NODES[k].keys); }, { csvName: 'keys' }),
      colPct('% keys', function (k) { return num(NODES[k].keys); }, function () { return TOT.keys; }),
      colBytes(BL, function (k) { return bytes[k]; }, { csvName: MK }),
      colPct('% bytes', function (k) { return bytes[k]; }, function () { return TOT[MK]; }, true),
      colInt('Members', function (k) { return num(NODES[k].member_count); }, { csvName: 'member_count' }),
      colInt('No-TTL keys', function (k) { return agg(NODES[k].no_ttl).keys; }, { csvName: 'no_ttl_keys' }),
      colBytes('No-TTL bytes', function (k) { return agg(NODES[k].no_ttl)[MK]; }, { csvName: 'no_ttl_' + MK }),
      colText('Is a key', function (k) { return NODES[k].is_key ? 'yes' : 'no'; }, { csvName: 'is_key' }),
      BYMEM ? colBytes('RDB bytes', function (k) { return num(NODES[k].rdb_size); }, { csvName: 'rdb_size' }) : null
    ];
    present.forEach(function (t) {
      cols.push(colBytes(t + ' bytes', function (k) { return num((NODES[k][MK + '_by_type'] || {})[t]); },
        { csvName: MK + '_' + t }));
    });
    var colBytesIdx = 6;
    b.appendChild(el('h3', null, 'All prefix nodes'));
    b.appendChild(table({
      id: 't-prefixes', title: 'Prefix nodes', csv: 'prefixes', csvFile: STEM + '_prefixes.csv',
      rows: idx, cols: cols, sort: [colBytesIdx, -1],
      note: 'Nodes nest: a node\'s numbers include those of the nodes below it. Click a prefix to zoom the chart to it.'
    }));
  }

  // ---------- top keys ----------

  function keyCols(rankLabel) {
    return [
      colInt('#', function (r) { return r._rank; }, { csvName: 'rank' }),
      colKey('Key', function (r) { return r.key; }, { csvName: 'key' }),
      colText('Instance', function (r) { return r.instance; }, { csvName: 'instance' }),
      colId('DB', function (r) { return r.db; }, { csvName: 'db' }),
      colText('Type', function (r) { return r.type; }, {
        csvName: 'type', cls: 'nowrap', render: function (r) { return [swatch(r.type), String(r.type)]; }
      }),
      colText('Encoding', function (r) { return r.encoding; }, { csvName: 'encoding' }),
      colBytes(BL, function (r) { return typeof r[MK] === 'number' ? r[MK] : null; }, {
        csvName: MK,
        render: function (r) {
          // A key without mem_size (a module value): no model applies, so no number is shown.
          if (typeof r[MK] !== 'number') return el('span', { title: 'no mem_size: no memory model applies to module values' }, '\u2013');
          return el('span', { title: fmtInt(r[MK]) + ' bytes' }, fmtBytes(r[MK]));
        }
      }),
      BYMEM ? colBytes('RDB bytes', function (r) { return num(r.rdb_size); }, { csvName: 'rdb_size' }) : null,
      colInt('Members', function (r) { return num(r.member_count); }, { csvName: 'member_count' }),
      {
        label: 'TTL', num: true, csvName: 'ttl_ms', title: 'Time to live at batch time (sort by TTL)',
        value: function (r) { return typeof r.ttl_ms === 'number' ? r.ttl_ms : null; },
        render: function (r) { return el('span', { title: r.expire_at ? 'expires at ' + r.expire_at : null }, ttlText(r.ttl_ms)); }
      },
      colInt('Idle', function (r) { return typeof r.idle_seconds === 'number' ? r.idle_seconds : null; }, {
        csvName: 'idle_seconds',
        render: function (r) { return typeof r.idle_seconds === 'number' ? fmtDur(r.idle_seconds) : '\u2013'; }
      }),
      colInt('Freq', function (r) { return typeof r.freq === 'number' ? r.freq : null; }, { csvName: 'freq' })
    ];
  }

  function ranked(list) {
    return arr(list).map(function (r, i) { return Object.assign({ _rank: i + 1 }, r); });
  }

  function renderTopKeys() {
    var b = body('top-keys');
    var top = num(P.top);
    var empty = 'No keys in this batch.';
    append(b, [
      el('p', { class: 'muted' }, 'The ' + fmtInt(top) + ' largest keys by bytes, and by members (ties: key bytes ascending). ' +
        'The same key name on two instances or dbs is two keys.'),
      table({ id: 't-top-size', title: 'Top keys by bytes', csv: 'top_keys_by_size', csvFile: STEM + '_top_keys_by_size.csv',
        rows: ranked(D.top_keys_by_size), cols: keyCols(), empty: empty }),
      table({ id: 't-top-members', title: 'Top keys by members', csv: 'top_keys_by_members',
        csvFile: STEM + '_top_keys_by_members.csv', rows: ranked(D.top_keys_by_members), cols: keyCols(), empty: empty })
    ]);
  }

  // ---------- expiry ----------

  var BUCKET_LABELS = {
    no_ttl: 'No expiry', expired: 'Already expired at batch time', lt_1h: 'Within 1 h', '1h_24h': '1 h \u2013 24 h',
    '1d_7d': '1 d \u2013 7 d', '7d_30d': '7 d \u2013 30 d', gt_30d: '30 d or later'
  };

  function renderExpiry() {
    var b = body('expiry');
    var ex = D.expiry || {};
    var buckets = arr(ex.buckets);
    var noTtl = buckets.filter(function (x) { return x.id === 'no_ttl'; })[0];
    var nt = agg(noTtl);
    append(b, el('p', null, 'Time to live at the batch timestamp (so the same batch always gives the same buckets). ',
      el('strong', { id: 'no-ttl-summary' }, fmtInt(nt.keys) + ' ' + plural(nt.keys, 'key', 'keys') + ' (' + fmtPct(nt.keys, TOT.keys) +
        ') hold ' + fmtInt(nt[MK]) + ' bytes (' + fmtPct(nt[MK], TOT[MK]) + ') without expiry.')));
    b.appendChild(table({
      id: 't-expiry', title: 'Expiry buckets', csv: 'expiry', csvFile: STEM + '_expiry.csv', rows: buckets,
      empty: 'No keys in this batch.',
      cols: [
        colText('Expires', function (r) { return BUCKET_LABELS[r.id] || r.id; }, { csvName: 'bucket', csv: function (r) { return r.id; } })
      ].concat(shareCols(agg))
    }));
    var rows = arr(ex.no_ttl_prefixes);
    b.appendChild(el('h3', null, 'Biggest prefixes without expiry'));
    b.appendChild(table({
      id: 't-no-ttl', title: 'Prefixes holding the most bytes without expiry', csv: 'no_ttl_prefixes',
      csvFile: STEM + '_no_ttl_prefixes.csv', rows: rows,
      note: 'Prefix nodes nest, so rows overlap (a prefix includes the ones below it).',
      empty: TOT.keys === 0 ? 'No keys in this batch.' : (nt.keys === 0 ? 'Every key has an expiry.' : 'No prefix node holds keys without expiry.'),
      cols: [
        colKey('Prefix', function (r) { return r.prefix; }, {
          csvName: 'prefix',
          render: function (r) {
            var k = r.node;
            var label = keyNode(r.prefix, '(empty prefix: all keys)');
            if (typeof k !== 'number' || !zoomToNode || k < 0 || k >= NODES.length) return label;
            return el('button', { type: 'button', class: 'link', title: 'Zoom the chart to this prefix',
              onclick: function () { zoomToNode(k); } }, label);
          }
        }),
        colInt('No-TTL keys', function (r) { return agg(r.no_ttl).keys; }, { csvName: 'no_ttl_keys' }),
        colBytes('No-TTL bytes', function (r) { return agg(r.no_ttl)[MK]; }, { csvName: 'no_ttl_' + MK }),
        colPct('% of prefix bytes', function (r) { return agg(r.no_ttl)[MK]; }, function (r) { return agg(r.all)[MK]; }, true),
        colPct('% of all bytes', function (r) { return agg(r.no_ttl)[MK]; }, function () { return TOT[MK]; }),
        colInt('All keys', function (r) { return agg(r.all).keys; }, { csvName: 'keys' }),
        colBytes('All bytes', function (r) { return agg(r.all)[MK]; }, { csvName: MK })
      ]
    }));
  }

  // ---------- cold data ----------

  function renderCold() {
    var b = body('cold');
    var cold = D.cold || {};
    function hist(h, id, field, what, policy, label) {
      var wf = agg(h && h.with_field);
      var out = [el('h3', null, what)];
      if (wf.keys === 0) {
        out.push(el('p', { class: 'empty', id: id + '-empty' }, TOT.keys === 0
          ? 'No keys in this batch.'
          : 'No keys carry ' + field + ': the server\'s maxmemory-policy is not ' + policy +
            ' (Redis writes ' + field + ' into the RDB only under an ' + policy + ' policy).'));
        return out;
      }
      out.push(el('p', { id: id + '-share' }, fmtInt(wf.keys) + ' of ' + fmtInt(TOT.keys) + ' keys (' + fmtPct(wf.keys, TOT.keys) +
        ', ' + fmtPct(wf[MK], TOT[MK]) + ' of bytes) carry ' + field + '.'));
      out.push(table({
        id: id, title: what, csv: field, csvFile: STEM + '_' + field + '.csv', rows: arr(h.buckets),
        cols: [
          { label: 'Range', csvName: 'lo', value: function (r) { return num(r.lo); }, render: label,
            title: 'Sort by lower bound' },
          colInt('Upper (excl.)', function (r) { return typeof r.hi === 'number' ? r.hi : null; }, { csvName: 'hi' }),
          colInt('Keys', function (r) { return agg(r).keys; }),
          colPct('% of keys with ' + field, function (r) { return agg(r).keys; }, function () { return wf.keys; }, true),
          colBytes(BL, function (r) { return agg(r)[MK]; }, { csvName: MK }),
          colPct('% of their bytes', function (r) { return agg(r)[MK]; }, function () { return wf[MK]; }),
          colInt('Members', function (r) { return agg(r).member_count; }, { csvName: 'member_count' })
        ]
      }));
      return out;
    }
    function idleLabel(r) {
      if (typeof r.hi !== 'number') return 'idle ' + fmtBound(num(r.lo)) + ' or more';
      if (num(r.lo) === 0) return 'idle under ' + fmtBound(r.hi);
      return fmtBound(num(r.lo)) + ' \u2013 ' + fmtBound(r.hi);
    }
    function freqLabel(r) {
      var lo = num(r.lo);
      if (typeof r.hi !== 'number') return lo + ' or more';
      return r.hi - lo === 1 ? String(lo) : lo + ' \u2013 ' + (r.hi - 1);
    }
    append(b, [
      el('p', { class: 'muted' }, 'Seconds since last access (LRU policies) and the logarithmic access counter (LFU ' +
        'policies), as the snapshot recorded them. Buckets are log-scale.'),
      el('div', { class: 'grid2' },
        el('div', null, hist(cold.idle, 't-idle', 'idle_seconds', 'Idle time', 'LRU', idleLabel)),
        el('div', null, hist(cold.freq, 't-freq', 'freq', 'Access frequency (LFU counter)', 'LFU', freqLabel)))
    ]);
  }

  // ---------- outliers ----------

  function renderOutliers() {
    var b = body('outliers');
    var o = D.outliers || {};
    var big = ranked(o.big_keys);
    var total = num(o.big_keys_total);
    var bagg = agg(o.big_keys_agg);
    append(b, el('h3', null, 'Big keys'));
    append(b, el('p', { id: 'big-keys-summary' }, total === 0
      ? 'No big keys: no string over ' + fmtBytes(num(P.big_string_bytes)) + ', no other key over ' +
        fmtBytes(num(P.big_other_bytes)) + ' or ' + fmtInt(num(P.big_members)) + ' members.'
      : fmtInt(total) + ' big ' + plural(total, 'key', 'keys') + ' hold ' + fmtInt(bagg[MK]) + ' bytes (' +
        fmtBytes(bagg[MK]) + ', ' + fmtPct(bagg[MK], TOT[MK]) + ' of all) and ' + fmtInt(bagg.member_count) +
        ' members: strings over ' + fmtBytes(num(P.big_string_bytes)) + ', other types over ' + fmtBytes(num(P.big_other_bytes)) +
        ' or ' + fmtInt(num(P.big_members)) + ' members.'));
    if (total > big.length) {
      b.appendChild(el('p', { class: 'note', id: 'big-keys-more' }, fmtInt(total - big.length) + ' more big ' +
        plural(total - big.length, 'key is', 'keys are') + ' not listed (the list stops at --top ' + fmtInt(num(P.top)) + ').'));
    }
    if (big.length) {
      b.appendChild(table({ id: 't-big-keys', title: 'Big keys', csv: 'big_keys', csvFile: STEM + '_big_keys.csv',
        rows: big, cols: keyCols() }));
    }

    // Encoding mix per type.
    b.appendChild(el('h3', null, 'Encoding mix per type'));
    var byType = arr(D.by_type), te = arr(D.by_type_encoding);
    var typeAgg = {};
    byType.forEach(function (r) { typeAgg[r.type] = agg(r); });
    if (!te.length) b.appendChild(el('p', { class: 'empty' }, 'No keys in this batch.'));
    byType.forEach(function (tr) {
      var rowsT = te.filter(function (r) { return r.type === tr.type; });
      var ta = agg(tr);
      var stack = el('div', { class: 'stack', role: 'img',
        'aria-label': tr.type + ' keys by encoding: ' + rowsT.map(function (r) { return r.encoding + ' ' + fmtPct(num(r.keys), ta.keys); }).join(', ') });
      rowsT.forEach(function (r, i) {
        var s = el('span', { title: r.encoding + ': ' + fmtInt(num(r.keys)) + ' keys (' + fmtPct(num(r.keys), ta.keys) + ')' });
        s.style.width = (ta.keys ? 100 * num(r.keys) / ta.keys : 0).toFixed(3) + '%';
        s.style.background = typeColorVar(tr.type);
        s.style.filter = 'brightness(' + (1 - 0.15 * i).toFixed(2) + ')';
        stack.appendChild(s);
      });
      b.appendChild(el('div', null, el('strong', null, swatch(tr.type), String(tr.type)), ' \u2014 ' +
        rowsT.map(function (r) { return r.encoding + ' ' + fmtPct(num(r.keys), ta.keys); }).join(', '), stack));
    });
    if (te.length) {
      b.appendChild(table({
        id: 't-encoding-mix', title: 'Encodings within each type', csv: 'encoding_mix', csvFile: STEM + '_encoding_mix.csv',
        rows: te,
        cols: [
          colText('Type', function (r) { return r.type; }, { csvName: 'type', cls: 'nowrap', render: function (r) { return [swatch(r.type), String(r.type)]; } }),
          colText('Encoding', function (r) { return r.encoding; }, { csvName: 'encoding' }),
          colInt('Keys', function (r) { return num(r.keys); }, { csvName: 'keys' }),
          colPct('% of the type\'s keys', function (r) { return num(r.keys); }, function (r) { return (typeAgg[r.type] || TOT).keys; }, true),
          colBytes(BL, function (r) { return num(r[MK]); }, { csvName: MK }),
          colPct('% of the type\'s bytes', function (r) { return num(r[MK]); }, function (r) { return (typeAgg[r.type] || TOT)[MK]; }),
          colInt('Avg members/key', function (r) { return num(r.keys) ? Math.round(num(r.member_count) / num(r.keys)) : 0; },
            { csvName: 'avg_member_count' })
        ]
      }));
    }

    b.appendChild(el('h3', null, 'Recommendations'));
    var recs = recommendations();
    if (!recs.length) {
      b.appendChild(el('p', { class: 'empty', id: 'no-recs' }, TOT.keys === 0
        ? 'No keys in this batch.'
        : 'Nothing to recommend: none of the checks found anything.'));
    } else {
      var ul = el('ul', { class: 'recs', id: 'recs' });
      recs.forEach(function (r) {
        ul.appendChild(el('li', { 'data-rec': r.id }, el('div', { class: 'rec-title' }, r.title), el('div', null, r.text)));
      });
      b.appendChild(ul);
    }
    b.appendChild(el('p', { class: 'muted' }, 'Checked, from this batch\'s numbers only: big strings, huge collections, small ' +
      'collections in hash-table encodings, keys without expiry, keys already expired, several databases, instance ' +
      'imbalance, slots on several instances, long-idle data.'));
  }

  // Recommendations: the report decided them (ReportData.recommendations, src/report/advice.rs);
  // this only phrases each one. A kind this page does not know is left out.
  function recommendations() {
    var out = [];
    var compact = {
      'small-hash': ['hash', 'hash-max-listpack-entries', 'hash-max-listpack-value', 'hashes'],
      'small-set': ['set', 'set-max-listpack-entries (Redis 7.2+; set-max-intset-entries for integers)', 'set-max-listpack-value', 'sets'],
      'small-zset': ['zset', 'zset-max-listpack-entries', 'zset-max-listpack-value', 'sorted sets']
    };
    arr(D.recommendations).forEach(function (r) {
      var atLeast = r.at_least ? 'At least ' : '';
      var keys = num(r.keys), bytes = num(r.bytes);
      switch (r.kind) {
        case 'big-strings':
          out.push({ id: r.kind, title: 'Big strings',
            text: [atLeast + fmtInt(keys) + ' string ' + plural(keys, 'key is', 'keys are') + ' over ' +
              fmtBytes(num(P.big_string_bytes)) + ' (largest: ', keyNode(r.largest), ', ' + fmtBytes(num(r.largest_bytes)) +
              ' on ' + r.largest_instance + '). Reading, writing, expiring or deleting a big string blocks the server for ' +
              'its whole size and makes replication and slot migration uneven: split it, or keep large blobs outside Redis.'] });
          break;
        case 'huge-collections':
          out.push({ id: r.kind, title: 'Huge collections',
            text: [atLeast + fmtInt(keys) + ' ' + plural(keys, 'collection has', 'collections have') +
              ' over ' + fmtInt(num(P.big_members)) + ' members or over ' + fmtBytes(num(P.big_other_bytes)) + ' (largest listed: ',
              keyNode(r.largest), ', a ' + r.largest_type + ' with ' + fmtInt(num(r.largest_members)) + ' members). Commands ' +
              'that read them whole (HGETALL, SMEMBERS, ZRANGE 0 -1, LRANGE 0 -1) are O(n), and DEL blocks: use UNLINK, ' +
              'iterate with *SCAN, or split the key by a hash of the member.'] });
          break;
        case 'small-hash':
        case 'small-set':
        case 'small-zset':
          var c = compact[r.kind], ht = r.encoding === 'raw', left = num(r.big_keys_left_out);
          var avg = keys > 0 ? num(r.member_count) / keys : 0;
          out.push({ id: r.kind, title: 'Small ' + c[3] + ' in a ' + (ht ? 'hash-table' : 'skip-list') + ' encoding',
            text: fmtInt(keys) + ' ' + c[0] + ' keys (' + fmtBytes(bytes) + (left ? ', leaving out ' + left + ' big ' +
              plural(left, 'key', 'keys') : '') + ') are stored as ' + (ht ? 'hash tables' : 'skip lists') +
              ' with ' + (Math.round(avg * 10) / 10) + ' members on average, at or below the default ' + c[1] +
              ' of 128. Redis keeps such small collections in the compact listpack encoding only when every member ' +
              'also fits ' + c[2] + ' (64 bytes by default): shorter members or higher limits would let these keys ' +
              'use much less memory.' });
          break;
        case 'no-ttl':
          var np = r.prefix;
          out.push({ id: r.kind, title: 'Most data never expires',
            text: [fmtPct(bytes, num(r.total_bytes)) + ' of the bytes (' + fmtInt(keys) + ' keys) have no expiry' +
              (np ? '; the biggest non-empty prefix among them is ' : '.'), np ? keyNode(np) : null,
              np ? ' (' + fmtBytes(num(r.prefix_bytes)) + ').' : null,
              ' If some of it is cache or session data, a TTL keeps it from growing without bound (see Expiry).'] });
          break;
        case 'expired':
          out.push({ id: r.kind, title: 'Expired keys still in the snapshot',
            text: fmtInt(keys) + ' ' + plural(keys, 'key', 'keys') + ' (' + fmtBytes(bytes) + ') had already ' +
              'expired at batch time but were still stored. Redis removes expired keys lazily and by sampling; many of ' +
              'them mean active expiry lags behind (see active-expire-effort, hz) or the snapshot came from a replica, ' +
              'which waits for its master to delete them.' });
          break;
        case 'many-dbs':
          var dbs = arr(r.dbs);
          out.push({ id: r.kind, title: 'Keys in several databases',
            text: 'Keys are spread over ' + dbs.length + ' databases (' + dbs.map(function (db) { return 'db ' + db; }).join(', ') +
              '). Redis Cluster supports only db 0; key prefixes separate data in a way that also survives a move to a cluster.' });
          break;
        case 'imbalance':
          var n = num(r.instances), mean = n > 0 ? num(r.total_bytes) / n : 0;
          out.push({ id: r.kind, title: 'Uneven instances',
            text: 'Instance ' + r.instance + ' holds ' + fmtBytes(bytes) + ', ' + fmtRatio(mean > 0 ? bytes / mean : NaN) +
              ' the mean of ' + fmtBytes(mean) + ' over ' + n + ' instances. Look at its ' +
              'biggest slots and keys (Balance, Top keys): a few big keys or a hot hash tag usually explain it.' });
          break;
        case 'shared-slots':
          var slots = num(r.slots);
          out.push({ id: r.kind, title: 'Slots found on several instances',
            text: fmtInt(slots) + ' ' + plural(slots, 'slot has', 'slots have') + ' keys on more than one ' +
              'instance: a slot migration was in progress when the snapshots were taken, or an instance still holds keys ' +
              'of slots it no longer owns (see Balance).' });
          break;
        case 'cold':
          out.push({ id: r.kind, title: 'Long-idle data',
            text: fmtInt(keys) + ' keys holding ' + fmtBytes(bytes) + ' (' + fmtPct(bytes, num(r.with_idle_bytes)) +
              ' of the bytes with an idle time) were not accessed for 30 days or more: candidates for a TTL, ' +
              'archiving, or deletion.' });
          break;
      }
    });
    return out;
  }

  // ---------- balance ----------

  function renderBalance() {
    var b = body('balance');
    var bal = D.balance || {};
    var inst = arr(D.by_instance);
    var km = num(bal.keys_mean), bm = num(bal[MK + '_mean']);
    if (!inst.length) {
      b.appendChild(el('p', { class: 'empty' }, 'No keys in this batch.'));
    } else {
      b.appendChild(el('p', { id: 'balance-summary' }, fmtInt(inst.length) + ' ' + plural(inst.length, 'instance', 'instances') +
        '. Keys: max ' + fmtInt(num(bal.keys_max)) + ', mean ' + fmtInt(km) + ' (max/mean ' + fmtRatio(km > 0 ? num(bal.keys_max) / km : NaN) +
        '). Bytes: max ' + fmtInt(num(bal[MK + '_max'])) + ' (' + fmtBytes(num(bal[MK + '_max'])) + '), mean ' + fmtInt(bm) +
        ' (' + fmtBytes(bm) + '; max/mean ' + fmtRatio(bm > 0 ? num(bal[MK + '_max']) / bm : NaN) + ').' +
        (inst.length === 1 ? ' One instance: nothing to balance.' : '')));
      b.appendChild(table({
        id: 't-balance', title: 'Per instance', csv: 'balance_instances', csvFile: STEM + '_balance_instances.csv', rows: inst,
        cols: [
          colText('Instance', function (r) { return r.instance; }, { csvName: 'instance' }),
          colInt('Keys', function (r) { return num(r.keys); }, { csvName: 'keys' }),
          { label: 'Keys / mean', num: true, csvName: 'keys_over_mean',
            value: function (r) { return km > 0 ? num(r.keys) / km : null; },
            csv: function (r) { return km > 0 ? (num(r.keys) / km).toFixed(4) : ''; },
            render: function (r) { return fmtRatio(num(r.keys) / km); } },
          colBytes(BL, function (r) { return num(r[MK]); }, { csvName: MK }),
          { label: 'Bytes / mean', num: true, csvName: MK + '_over_mean', cls: 'bar-cell',
            value: function (r) { return bm > 0 ? num(r[MK]) / bm : null; },
            csv: function (r) { return bm > 0 ? (num(r[MK]) / bm).toFixed(4) : ''; },
            render: function (r) { return [fmtRatio(num(r[MK]) / bm), bar(num(r[MK]), num(bal[MK + '_max']))]; } },
          colPct('% bytes', function (r) { return num(r[MK]); }, function () { return TOT[MK]; }),
          colInt('Members', function (r) { return num(r.member_count); }, { csvName: 'member_count' })
        ]
      }));
    }

    var bySize = arr(bal.top_slots_by_bytes), byKeys = arr(bal.top_slots_by_keys), shared = arr(bal.shared_slots);
    var noSlots = 'No slot information: the batch was not read from a Redis Cluster or Codis (redis_slot and codis_slot are empty).';
    var hasSlots = bySize.length > 0 || byKeys.length > 0 || shared.length > 0;
    function slotCols() {
      return [
        colText('Kind', function (r) { return r.kind; }, { csvName: 'kind' }),
        colId('Slot', function (r) { return num(r.slot); }, { csvName: 'slot' }),
        colInt('Instances', function (r) { return num(r.instances); }, { csvName: 'instances' }),
        colInt('Keys', function (r) { return num(r.keys); }, { csvName: 'keys' }),
        colBytes(BL, function (r) { return num(r[MK]); }, { csvName: MK }),
        colPct('% bytes', function (r) { return num(r[MK]); }, function () { return TOT[MK]; }, true),
        colInt('Members', function (r) { return num(r.member_count); }, { csvName: 'member_count' })
      ];
    }
    b.appendChild(el('h3', null, 'Slots'));
    if (!hasSlots) {
      b.appendChild(el('p', { class: 'empty', id: 'no-slots' }, noSlots));
      return;
    }
    append(b, el('div', { class: 'grid2' },
      table({ id: 't-slots-bytes', title: 'Top slots by bytes', csv: 'top_slots_by_bytes', csvFile: STEM + '_top_slots_by_bytes.csv',
        rows: bySize, cols: slotCols(), empty: noSlots }),
      table({ id: 't-slots-keys', title: 'Top slots by keys', csv: 'top_slots_by_keys', csvFile: STEM + '_top_slots_by_keys.csv',
        rows: byKeys, cols: slotCols(), empty: noSlots })));
    var flat = [];
    shared.forEach(function (s) {
      arr(s.instances).forEach(function (r) {
        flat.push({ kind: s.kind, slot: s.slot, n: arr(s.instances).length, instance: r.instance, keys: num(r.keys),
          rdb_size: num(r.rdb_size), mem_size: num(r.mem_size), member_count: num(r.member_count) });
      });
    });
    b.appendChild(el('h3', null, 'Slots on more than one instance'));
    b.appendChild(el('p', { id: 'shared-summary' }, shared.length
      ? fmtInt(shared.length) + ' ' + plural(shared.length, 'slot has', 'slots have') + ' keys on more than one instance ' +
        '(a migration in progress, or keys left behind). One row per slot and instance:'
      : 'No slot has keys on more than one instance.'));
    if (flat.length) {
      b.appendChild(table({
        id: 't-shared-slots', title: 'Shared slots', csv: 'shared_slots', csvFile: STEM + '_shared_slots.csv', rows: flat,
        cols: [
          colText('Kind', function (r) { return r.kind; }, { csvName: 'kind' }),
          colId('Slot', function (r) { return num(r.slot); }, { csvName: 'slot' }),
          colInt('Instances', function (r) { return r.n; }, { csvName: 'instances' }),
          colText('Instance', function (r) { return r.instance; }, { csvName: 'instance' }),
          colInt('Keys', function (r) { return r.keys; }, { csvName: 'keys' }),
          colBytes(BL, function (r) { return r[MK]; }, { csvName: MK }),
          colInt('Members', function (r) { return r.member_count; }, { csvName: 'member_count' })
        ]
      }));
    }
  }

  try {
    renderSummary();
    renderChanges();
    renderBreakdowns();
    renderPrefixes();
    renderTopKeys();
    renderExpiry();
    renderCold();
    renderOutliers();
    renderBalance();
  } catch (e) {
    fatal('The report could not be shown completely: ' + (e && e.message ? e.message : String(e)));
    throw e;
  }
  // Page ready: every section is built and the chart drawn. The value is milliseconds since
  // navigation start (the browser test holds it to a budget).
  document.documentElement.setAttribute('data-report-ready', String(Math.round(performance.now())));
})();
