"""Append throughput via EventLog (store + memory bus): sequential one session, and 8 sessions concurrently."""
import asyncio, sys, tempfile, time, secrets, json
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from openinspect.store import Store
from openinspect.bus.memory import MemoryBus
from openinspect.sessions.eventlog import EventLog
from openinspect.domain.events import AgentText
from tests.store.records import session_record

N = int(sys.argv[2]) if len(sys.argv) > 2 else 2000

async def run(url):
    store = await Store.open(url)
    log = EventLog(store, MemoryBus())
    user = await store.users.create(name="A", email="a@e", role="admin")
    sids = []
    for i in range(9):
        s = session_record(f"ses_{secrets.token_hex(8)}", user.id)
        await store.sessions.create(s); sids.append(s.id)
    def ev(sid, i): return AgentText(session_id=sid, seq=0, part_id="p", text=f"hello {i} " * 10)
    for i in range(100):
        await log.append(ev(sids[0], i))
    t = time.perf_counter(); c = time.process_time()
    for i in range(N):
        await log.append(ev(sids[0], i))
    seq_rate = N / (time.perf_counter() - t)
    cpu_us = (time.process_time() - c) / N * 1e6
    async def one(sid):
        for i in range(N // 8):
            await log.append(ev(sid, i))
    t = time.perf_counter()
    await asyncio.gather(*(one(s) for s in sids[1:]))
    conc_rate = (N // 8 * 8) / (time.perf_counter() - t)
    await store.close()
    return {'seq_per_s': round(seq_rate), 'conc_per_s': round(conc_rate), 'cpu_us_per_append': round(cpu_us)}

async def main():
    kind = sys.argv[1]
    if kind == "sqlite":
        d = tempfile.mkdtemp()
        print("sqlite", await run(f"sqlite+aiosqlite:///{d}/b.db"))
    else:
        admin = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
        name = f"oi_bench_{secrets.token_hex(4)}"
        async with admin.connect() as c: await c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            print("postgres", await run(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"))
        finally:
            async with admin.connect() as c: await c.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            await admin.dispose()
asyncio.run(main())
