import os, sys, re, subprocess, collections
root = os.environ.get('OUT', '/tmp/stream-profile')
# perf-split.py NAME... — perf samples per 1,000 requests (≈ µs of CPU per request at 999 Hz) by the leaf frame's module, for $OUT/prof-NAME (stream-profile.sh)
def cat(dso, sym):
    if 'kernel' in dso: return 'kernel'
    if 'libcoreclr' in dso or 'libclrjit' in dso: return 'runtime native (GC, stubs, JIT)'
    if re.search(r'libc[.-]', dso) or 'libpthread' in dso: return 'libc'
    if 'libSystem.Native' in dso or 'libSystem' in dso: return 'native shims'
    s = sym
    if s.startswith('System.Private.CoreLib') : return 'CoreLib (async, collections, strings)'
    if s.startswith('Bifrost.'): return 'Bifrost.Middleware (+Sample)'
    if s.startswith('System.Text.Json'): return 'System.Text.Json'
    if s.startswith('System.Net.ServerSentEvents'): return 'SseParser'
    if s.startswith('Microsoft.AspNetCore.Server.Kestrel'): return 'Kestrel'
    if s.startswith('System.IO.Pipelines'): return 'Pipelines'
    if s.startswith('System.Net.Http'): return 'HttpClient'
    if s.startswith('System.Net.Sockets'): return 'Sockets'
    if s.startswith('OpenTelemetry'): return 'OpenTelemetry SDK'
    if s.startswith('System.Diagnostics'): return 'DiagnosticSource'
    if s.startswith('Microsoft.Extensions'): return 'Microsoft.Extensions'
    if s.startswith('Microsoft.AspNetCore'): return 'ASP.NET Core'
    if s.startswith('System.') or s.startswith('Internal.') or s.startswith('Interop'): return 'CoreLib (async, collections, strings)'
    if 'perf-' in dso or 'memfd' in dso or dso == '[unknown]' or 'JIT' in dso: return 'other managed/unknown'
    return 'other native'
res = {}
tops = {}
for name in sys.argv[1:]:
    d = f'{root}/prof-{name}'
    req = int(re.search(r'requests=(\d+)', open(f'{d}/wrk.txt').read()).group(1))
    out = subprocess.run(['perf','report','-i',f'{d}/perf.data','--no-children','--sort','dso,sym','-g','none','--stdio','-F','sample,dso,sym','--percent-limit','0'],capture_output=True,text=True).stdout
    c = collections.Counter(); t = collections.Counter(); total = 0
    for line in out.splitlines():
        m = re.match(r'\s+(\d+)\s+(.*?)\s+\[[.k]\]\s+(.*)$', line)
        if not m: continue
        n, dso, sym = int(m.group(1)), m.group(2), m.group(3).strip()
        a = re.search(r'\[([A-Za-z][\w.]*)\] ([A-Za-z_<][^(]*)', sym)
        if dso.startswith('[JIT]') and a: sym = a.group(1) + ' :: ' + a.group(2)
        elif dso.endswith('.dll'): sym = dso[:-4] + ' :: ' + sym
        total += n; c[cat(dso, sym)] += n
        if sym.startswith('Bifrost.') or sym.startswith('System.Text.Json') or 'ServerSentEvents' in sym: t[sym[:120]] += n
    k = 1000.0/req
    res[name] = ({a: b*k for a, b in c.items()}, total*k, req)
    tops[name] = [(s, n*k) for s, n in t.most_common(12)]
names = sys.argv[1:]
cats = sorted({a for n in names for a in res[n][0]}, key=lambda a: -max(res[n][0].get(a,0) for n in names))
print('| leaf frame | ' + ' | '.join(f'{n} ({res[n][2]} req)' for n in names) + ' |')
print('|---|' + '---|'*len(names))
for a in cats: print(f'| {a} | ' + ' | '.join(f'{res[n][0].get(a,0):.1f}' for n in names) + ' |')
print('| **total** | ' + ' | '.join(f'**{res[n][1]:.1f}**' for n in names) + ' |')
for n in names:
    print(f'\n{n} top JSON/SSE/gateway leaf frames (samples/1000 req):')
    for s, v in tops[n]: print(f'  {v:6.2f}  {s}')
