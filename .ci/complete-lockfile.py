#!/usr/bin/env python3
# Completes package-lock.json with the optional, other-platform binaries of swc and of jest's resolver:
# `npm install` records only the ones it could fetch, while `npm ci` insists on seeing every optional
# dependency in the lock. The added entries carry os/cpu, so npm never installs them on another platform.
# Run it after any `npm install` that changes package-lock.json.
import json,re,sys
lock=json.load(open('package-lock.json'))
pk=lock['packages']
added=[]
for path,meta in list(pk.items()):
    for name,ver in (meta.get('optionalDependencies') or {}).items():
        # resolve like node: nested first, then top-level
        cand=[f"{path}/node_modules/{name}" if path else f"node_modules/{name}", f"node_modules/{name}"]
        if any(c in pk for c in cand): continue
        tail=name.split('/')[-1]
        os_=next((o for o in ['darwin','win32','linux','android','freebsd','openharmony','sunos','aix','netbsd','openbsd'] if o in tail),None)
        cpu=next((c for c in ['arm64','x64','ia32','arm','ppc64','s390x','riscv64','loong64','wasm32','mips64el'] if re.search(r'(^|-)'+c+r'($|-|eabi|gnu|musl|msvc)',tail.split('-',1)[1] if '-' in tail else tail)),None)
        if not os_ and not cpu: print('skip',name); continue
        entry={"version":ver,"optional":True}
        if cpu: entry["cpu"]=[cpu]
        if os_: entry["os"]=[os_]
        if 'musl' in tail: entry['libc']=['musl']
        elif 'gnu' in tail: entry['libc']=['glibc']
        pk[f"node_modules/{name}"]=entry; added.append((name,ver,entry.get('os'),entry.get('cpu')))
lock['packages']=dict(sorted(pk.items(),key=lambda kv:(kv[0]!='',kv[0])))
json.dump(lock,open('package-lock.json','w'),indent=2); open('package-lock.json','a').write('\n')
for a in added: print(a)
