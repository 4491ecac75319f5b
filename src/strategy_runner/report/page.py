"""The page around the sections: style, script and the Content-Security-Policy that forbids
any fetch, shared by a run's report and the comparison page."""

from __future__ import annotations

import json
from typing import Any

from .svg import esc

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1040px;padding:0 12px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:30px 0 8px;border-bottom:1px solid #e3e6ec;padding-bottom:4px}
h3{font-size:14px;margin:16px 0 6px}.sub{color:#5b6475;margin:0 0 10px}
.warn{background:#fff4e5;border:1px solid #f0b45a;padding:8px 12px;margin:12px 0}.warn ul{margin:4px 0;padding-left:20px}
.facts{display:grid;grid-template-columns:repeat(4,1fr);gap:2px 16px;margin:10px 0}.facts div{border-bottom:1px solid #eef0f4;padding:3px 0}
.facts span{display:block;color:#5b6475;font-size:12px}.facts b{font-weight:600}
.cards{display:grid;grid-template-columns:repeat(5,1fr);gap:8px}.card{border:1px solid #e3e6ec;border-radius:6px;padding:6px 9px}
.card b{display:block;font-size:17px}.card span{color:#5b6475;font-size:12px}.card small{color:#5b6475;font-size:11px;display:block}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums;margin:4px 0 8px}
th,td{padding:3px 8px;border-bottom:1px solid #eef0f4;text-align:right;white-space:nowrap}th:first-child,td:first-child{text-align:left}
th{background:#f6f7f9;font-weight:600}td.l,th.l{text-align:left}tr.total td{font-weight:600;border-top:1px solid #c9ced8}
.sortable th{cursor:pointer;user-select:none}.sortable th[data-dir]::after{content:" \\25B4"}.sortable th[data-dir=desc]::after{content:" \\25BE"}
.scroll{max-height:420px;overflow:auto;border:1px solid #eef0f4}.scroll th{position:sticky;top:0}
.neg{color:#b42318}.pos{color:#067647}.bar.neg{fill:#d9534f}.bar.pos{fill:#3a7bd5}
.fig{margin:0}svg.chart{display:block;max-width:100%;height:auto}.grid{stroke:#eef0f4}.tick{fill:#5b6475;font-size:11px}
.base{stroke:#9aa3b2;stroke-dasharray:3 3}.line{fill:none;stroke:#3a7bd5;stroke-width:1.6}.bench{fill:none;stroke:#9aa3b2;stroke-width:1.4;stroke-dasharray:5 3}
.dd{fill:none;stroke:#b42318;stroke-width:1.2}.area{fill:#d9534f;opacity:.18}
.c-up{fill:#2e9e6b;stroke:#2e9e6b;stroke-width:.8}.c-down{fill:#d9534f;stroke:#d9534f;stroke-width:.8}
.m-long{fill:#0b6bcb;stroke:#fff;stroke-width:.5}.m-short{fill:#e07b00;stroke:#fff;stroke-width:.5}
.m-win{fill:none;stroke:#067647;stroke-width:1.4}.m-loss{fill:none;stroke:#7a1f14;stroke-width:1.4}.marks{fill:none;stroke:none}
svg.defs{position:absolute;width:0;height:0}
.legend{font-size:12px;color:#5b6475;margin:2px 0 4px 70px}.legend span{margin-right:14px}
.legend i{display:inline-block;width:12px;height:4px;margin-right:5px;vertical-align:middle;background:#3a7bd5}
.legend i.bench{background:#9aa3b2}.legend i.c-up{background:#2e9e6b;height:8px}.legend i.c-down{background:#d9534f;height:8px}
.legend i.m-long{background:#0b6bcb;height:8px}.legend i.m-short{background:#e07b00;height:8px}
.legend i.m-win{background:none;border:2px solid #067647;height:6px;width:6px;}.legend i.m-loss{background:none;border:2px solid #7a1f14;height:6px;width:6px}
.empty{color:#5b6475;font-style:italic}.tabs button,.filters select,.filters button{font:inherit;margin:0 4px 6px 0;padding:2px 10px;border:1px solid #c9ced8;background:#fff;border-radius:4px;cursor:pointer}
.tabs button.on{background:#1d2330;color:#fff;border-color:#1d2330}.filters{margin:4px 0}
.ident td{font-family:ui-monospace,monospace;font-size:12px;text-align:left;word-break:break-all;white-space:normal}
.split{display:grid;grid-template-columns:1fr 1fr;gap:16px}
td.best{font-weight:700;background:#eef6ee}a{color:#0b6bcb}
#status{color:#5b6475;font-size:12px;margin-top:24px}
"""

# Draws the interactive parts (trade list, period tabs, sortable tables) and checks the page:
# sections shown, charts with geometry, script errors; the result goes on <body> (read by
# the headless-browser test) and, inside an iframe (MLflow's artifact view), to the parent.
JS = r"""
(function(){
  var errors=[];
  window.addEventListener('error',function(e){errors.push(String(e.message));document.body.dataset.errors=errors.join('; ');});
  function cellValue(td){var v=td.getAttribute('data-v');return v!==null?parseFloat(v):td.textContent.trim();}
  function compare(a,b){return (typeof a==='number'&&typeof b==='number')?a-b:String(a).localeCompare(String(b));}
  function sortable(table){
    var heads=table.querySelectorAll('th');
    heads.forEach(function(th,i){th.addEventListener('click',function(){
      var dir=th.getAttribute('data-dir')==='desc'?'asc':'desc';heads.forEach(function(h){h.removeAttribute('data-dir');});
      th.setAttribute('data-dir',dir);var body=table.tBodies[0],rows=[].slice.call(body.rows);
      rows.sort(function(a,b){var r=compare(cellValue(a.cells[i]),cellValue(b.cells[i]));return dir==='asc'?r:-r;});
      rows.forEach(function(r){body.appendChild(r);});});});
  }
  function fmtTime(s){return new Date(s*1000).toISOString().slice(0,16).replace('T',' ');}
  function fmtDur(m){var d=Math.floor(m/1440),h=Math.floor(m%1440/60),mm=Math.round(m%60);return (d?d+'d ':'')+h+':'+(mm<10?'0':'')+mm;}
  function tradeList(){
    var src=document.getElementById('trade-data');if(!src)return;
    var data=JSON.parse(src.textContent),rows=data.rows,futures=data.futures,table=document.getElementById('trade-table');
    var pairSel=document.getElementById('f-pair'),sideSel=document.getElementById('f-side'),more=document.getElementById('f-more'),count=document.getElementById('f-count');
    data.pairs.forEach(function(p,i){var o=document.createElement('option');o.value=i;o.textContent=p;pairSel.appendChild(o);});
    var cols=[['#',function(r,i){return r[12];},null],['Pair',function(r){return data.pairs[r[0]];},null],
      ['Side',function(r){return r[1]?'short':'long';},null],['Open',function(r){return r[2];},function(v){return fmtTime(data.t0+v*60);}],
      ['Close',function(r){return r[3];},function(v){return fmtTime(data.t0+v*60);}],['Duration',function(r){return r[3]-r[2];},fmtDur],
      ['Open rate',function(r){return r[4];},null],['Close rate',function(r){return r[5];},null],
      ['Profit %',function(r){return r[6];},function(v){return v.toFixed(2)+'%';}],['Profit',function(r){return r[7];},function(v){return v.toFixed(2);}],
      ['Exit reason',function(r){return data.reasons[r[8]];},null],['Enter tag',function(r){return data.tags[r[9]];},null]];
    if(futures){cols.push(['Leverage',function(r){return r[10];},null]);cols.push(['Funding',function(r){return r[11];},function(v){return v.toFixed(4);}]);}
    var sortCol=0,dir=1,shown=250;
    var head=table.createTHead().insertRow();
    cols.forEach(function(c,i){var th=document.createElement('th');th.textContent=c[0];if(i===1||i===2||i>=10&&i<=11)th.className='l';
      th.addEventListener('click',function(){dir=sortCol===i?-dir:(i===0?1:-1);sortCol=i;draw();});head.appendChild(th);});
    var body=table.createTBody();
    function draw(){
      var p=pairSel.value,s=sideSel.value;
      var list=rows.filter(function(r){return (p===''||r[0]==p)&&(s===''||(s==='short')===!!r[1]);});
      var key=cols[sortCol][1];list.sort(function(a,b){return dir*compare(key(a),key(b));});
      [].forEach.call(head.cells,function(th,i){if(i===sortCol)th.setAttribute('data-dir',dir>0?'asc':'desc');else th.removeAttribute('data-dir');});
      var html=[];list.slice(0,shown).forEach(function(r){
        html.push('<tr>'+cols.map(function(c,i){var v=c[1](r),t=c[2]?c[2](v):v;
          var cls=(i===8||i===9)?(r[7]<0?' class="neg"':' class="pos"'):(i===1||i===2||i===10||i===11?' class="l"':'');
          return '<td'+cls+'>'+String(t).replace(/&/g,'&amp;').replace(/</g,'&lt;')+'</td>';}).join('')+'</tr>');});
      body.innerHTML=html.join('');
      count.textContent=Math.min(shown,list.length)+' of '+list.length+' trades shown ('+rows.length+' in all)';
      more.style.display=list.length>shown?'':'none';
    }
    pairSel.addEventListener('change',function(){shown=250;draw();});sideSel.addEventListener('change',function(){shown=250;draw();});
    more.addEventListener('click',function(){shown+=1000;draw();});
    draw();
  }
  function tabs(){
    document.querySelectorAll('.tabs').forEach(function(group){
      var buttons=group.querySelectorAll('button');
      buttons.forEach(function(b){b.addEventListener('click',function(){
        buttons.forEach(function(o){o.classList.toggle('on',o===b);var t=document.getElementById(o.dataset.show);if(t)t.hidden=o!==b;});});});
    });
  }
  function check(){
    var charts=document.querySelectorAll('svg.chart'),drawn=0,sections=[],empty=[];
    charts.forEach(function(svg){var b=svg.getBBox();if(b.width>0&&b.height>0&&svg.querySelector('path,rect'))drawn++;});
    document.querySelectorAll('section[data-section]').forEach(function(s){
      var shown=s.offsetHeight>0&&s.querySelector('table tr td,svg.chart,p,div');(shown?sections:empty).push(s.dataset.section);});
    var b=document.body.dataset;b.charts=String(charts.length);b.drawn=String(drawn);b.sections=sections.join(',');b.emptySections=empty.join(',');
    var tt=document.getElementById('trade-table');b.tradeRows=tt?String(tt.tBodies.length?tt.tBodies[0].rows.length:0):'';
    var text=drawn+' of '+charts.length+' charts drawn; '+sections.length+' sections shown';
    document.getElementById('status').textContent=text;
    if(window.parent!==window)window.parent.postMessage({report:text,errors:errors.length,sections:b.sections},'*');
  }
  // An iframe from another origin (MLflow's artifact view) can start before its parent has given
  // it a size: nothing is laid out yet and every section would count as hidden. Check once laid
  // out (or after 10 s, whatever it shows then).
  function whenLaidOut(f,waited){
    if((innerWidth>0&&document.body.offsetHeight>0)||waited>=10000)f();else setTimeout(function(){whenLaidOut(f,(waited||0)+50);},50);
  }
  document.addEventListener('DOMContentLoaded',function(){
    document.querySelectorAll('table.sortable').forEach(sortable);tabs();tradeList();whenLaidOut(check);
  });
})();
"""


def json_script(element_id: str, payload: Any) -> str:
    """Data for the script, as JSON that cannot end the script element early."""
    text = json.dumps(payload, separators=(",", ":")).replace("</", "<\\/")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def section(name: str, title: str, body: str, sub: str = "") -> str:
    heading = f"<h2>{esc(title)}</h2>" if title else ""
    return f'<section data-section="{name}">{heading}{sub}{body}</section>'


def page(title: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title><style>{CSS}</style><script>{JS}</script></head>
<body>
{body}
<p id="status">charts not checked (scripts off)</p>
</body></html>
"""
