// node-postgres (`pg`) through pgpulse in transaction mode with fewer servers
// than clients (the harness gives the proxy a pool of 2; these tests use 5-6
// concurrent clients): named prepared statements across transactions,
// commit and rollback, COPY in and out with pg-copy-streams, protocol
// cancel, an error in the middle of queued and of pipelined queries,
// LISTEN/NOTIFY and session variables.
//
// Run through `cargo test -p pgpulse-proxy --test client_libraries`, which
// starts PostgreSQL and the proxy and sets PGPULSE_URL / PGPULSE_DIRECT_URL.

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'node:test'

import pg from 'pg'
import { from as copyFrom, to as copyTo } from 'pg-copy-streams'

const PROXY_URL = process.env.PGPULSE_URL
const DIRECT_URL = process.env.PGPULSE_DIRECT_URL
if (!PROXY_URL || !DIRECT_URL) {
  throw new Error(
    'PGPULSE_URL and PGPULSE_DIRECT_URL must be set: run this suite through ' +
      '`cargo test -p pgpulse-proxy --test client_libraries`'
  )
}

const CLIENTS = 6
const OPTS = { timeout: 60_000 }

/** A connected client on the proxy (or on PostgreSQL with `url`). */
async function connect(url = PROXY_URL, extra = {}) {
  const client = new pg.Client({ connectionString: url, ...extra })
  await client.connect()
  return client
}

/** Runs fn(i) for n clients at once, each with its own connection. */
async function withClients(n, fn, extra = {}) {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const client = await connect(PROXY_URL, extra)
      try {
        return await fn(client, i)
      } finally {
        await client.end()
      }
    })
  )
}

/** A unique name for this test's tables, channels and schemas. */
const unique = () => 'js_' + randomBytes(5).toString('hex')

async function direct(fn) {
  const client = await connect(DIRECT_URL)
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

test('plain queries', OPTS, async () => {
  await withClients(CLIENTS, async (c, i) => {
    for (let j = 0; j < 10; j++) {
      const r = await c.query('SELECT $1::int * 100 + $2::int AS v', [i, j])
      assert.equal(r.rows[0].v, i * 100 + j)
    }
    const multi = await c.query(`SELECT ${i} AS a; SELECT 'two' AS b`)
    assert.equal(multi[0].rows[0].a, i)
    assert.equal(multi[1].rows[0].b, 'two')
    const big = await c.query('SELECT g FROM generate_series(1, 1000) g')
    assert.equal(big.rowCount, 1000)
  })
})

test('named prepared statements move between servers', OPTS, async () => {
  const seen = await withClients(CLIENTS, async (c, i) => {
    const pids = new Set()
    for (let j = 0; j < 40; j++) {
      const add = {
        name: 'add',
        text: 'SELECT $1::int + $2::int AS s, pg_backend_pid() AS pid',
        values: [i, j],
      }
      let r
      if (j % 2 === 0) {
        r = await c.query(add)
      } else {
        await c.query('BEGIN')
        r = await c.query(add)
        const text = `client ${i} round ${j}`
        const echo = await c.query({ name: 'echo', text: 'SELECT $1::text AS t', values: [text] })
        assert.equal(echo.rows[0].t, text)
        await c.query('COMMIT')
      }
      assert.equal(r.rows[0].s, i + j)
      pids.add(r.rows[0].pid)
      await sleep(2) // let the other clients take the server
    }
    return pids
  })
  const every = new Set(seen.flatMap((s) => [...s]))
  assert.ok(every.size <= 2, `pool of 2 but saw backends ${[...every]}`)
  assert.ok(
    seen.some((s) => s.size > 1),
    'no client changed server: the test proves nothing'
  )
})

test('commit and rollback', OPTS, async () => {
  const table = unique()
  await direct((d) => d.query(`CREATE TABLE ${table} (client int, n int, PRIMARY KEY (client, n))`))
  await withClients(5, async (c, i) => {
    const insert = { name: 'ins', text: `INSERT INTO ${table} VALUES ($1, $2)` }
    for (let n = 0; n < 20; n++) {
      await c.query('BEGIN')
      await c.query({ ...insert, values: [i, n] })
      await c.query(n % 2 === 0 ? 'COMMIT' : 'ROLLBACK')
    }
    // An error aborts the transaction; COMMIT then rolls back.
    await c.query('BEGIN')
    await c.query({ ...insert, values: [i, 1000] })
    await assert.rejects(c.query('SELECT 1/0'), { code: '22012' })
    await assert.rejects(c.query('SELECT 1'), { code: '25P02' })
    const end = await c.query('COMMIT')
    assert.equal(end.command, 'ROLLBACK')
    assert.equal((await c.query('SELECT 7 AS v')).rows[0].v, 7)
  })
  const rows = await direct((d) => d.query(`SELECT client, n FROM ${table} ORDER BY client, n`))
  const want = []
  for (let i = 0; i < 5; i++) for (let n = 0; n < 20; n += 2) want.push({ client: i, n })
  assert.deepEqual(rows.rows, want)
})

test('COPY in and out with pg-copy-streams', OPTS, async () => {
  const ROWS = 5000
  const table = unique()
  await direct((d) => d.query(`CREATE TABLE ${table} (client int, n int, label text)`))
  await withClients(5, async (c, i) => {
    async function* lines() {
      for (let n = 0; n < ROWS; n += 500) {
        let chunk = ''
        for (let k = n; k < n + 500; k++) chunk += `${i}\t${k}\trow ${k} of client ${i}\n`
        yield chunk
      }
    }
    const sink = c.query(copyFrom(`COPY ${table} FROM STDIN`))
    await pipeline(Readable.from(lines()), sink)
    assert.equal(sink.rowCount, ROWS)
    const count = await c.query(`SELECT count(*)::int AS n FROM ${table} WHERE client = $1`, [i])
    assert.equal(count.rows[0].n, ROWS)

    const source = c.query(copyTo(`COPY (SELECT n, label FROM ${table} WHERE client = ${i} ORDER BY n) TO STDOUT`))
    const chunks = []
    for await (const chunk of source) chunks.push(chunk)
    const out = Buffer.concat(chunks).toString('utf8').split('\n').filter(Boolean)
    assert.equal(out.length, ROWS)
    assert.equal(out[0], `0\trow 0 of client ${i}`)
    assert.equal(out[ROWS - 1], `${ROWS - 1}\trow ${ROWS - 1} of client ${i}`)
    assert.equal((await c.query("SELECT 'after copy' AS v")).rows[0].v, 'after copy')
  })
  const total = await direct((d) => d.query(`SELECT count(*)::int AS n FROM ${table}`))
  assert.equal(total.rows[0].n, 5 * ROWS)
})

// node-postgres has no documented cancel API, but `Client.prototype.cancel(
// client, query)` on a fresh, unconnected Client opens a connection and sends
// the protocol CancelRequest with the target's BackendKeyData (pg-pool and
// pg-query-stream rely on it).
test('protocol cancel of pg_sleep(10)', OPTS, async () => {
  let stop = false
  // Other clients keep the second server busy meanwhile; whether a cancel
  // can reach them is cancel_never_reaches_another_client in the Rust suite.
  const busy = withClients(4, async (c) => {
    while (!stop) {
      try {
        await c.query('SELECT pg_sleep(0.05)')
      } catch (e) {
        assert.equal(e.code, '57014')
      }
    }
  })
  const client = await connect()
  try {
    const query = client.query(new pg.Query('SELECT pg_sleep(10)'))
    const outcome = new Promise((resolve) => {
      query.on('error', (e) => resolve(e))
      query.on('end', () => resolve(null))
    })
    await sleep(500)
    const sent = performance.now()
    new pg.Client({ connectionString: PROXY_URL }).cancel(client, query)
    const err = await outcome
    const took = performance.now() - sent
    assert.ok(err, 'pg_sleep(10) was not cancelled')
    assert.equal(err.code, '57014', String(err))
    assert.ok(took < 1000, `cancel took ${took.toFixed(0)} ms`)
    assert.equal((await client.query("SELECT 'alive' AS v")).rows[0].v, 'alive')
  } finally {
    stop = true
    await client.end()
    await busy
  }
})

/** Three queries issued without waiting; the middle one fails. */
async function errorInTheMiddle(c, i) {
  const results = await Promise.allSettled([
    c.query({ name: 'div', text: 'SELECT 100 / $1::int AS v', values: [1] }),
    c.query({ name: 'div', text: 'SELECT 100 / $1::int AS v', values: [0] }),
    c.query('SELECT $1::int AS v', [i]),
    c.query('SELEC broken'),
    c.query(`SELECT ${i} + 1 AS v`),
  ])
  assert.equal(results[0].status, 'fulfilled', String(results[0].reason))
  assert.equal(results[0].value.rows[0].v, 100)
  assert.equal(results[1].status, 'rejected')
  assert.equal(results[1].reason.code, '22012')
  assert.equal(results[2].status, 'fulfilled', String(results[2].reason))
  assert.equal(results[2].value.rows[0].v, i)
  assert.equal(results[3].status, 'rejected')
  assert.equal(results[3].reason.code, '42601')
  assert.equal(results[4].status, 'fulfilled', String(results[4].reason))
  assert.equal(results[4].value.rows[0].v, i + 1)
}

test('an error in the middle of queued queries', OPTS, async () => {
  await withClients(5, async (c, i) => {
    for (let round = 0; round < 10; round++) await errorInTheMiddle(c, i)
  })
})

test('an error in the middle of pipelined queries (pipeline: true)', OPTS, async () => {
  await withClients(
    5,
    async (c, i) => {
      for (let round = 0; round < 10; round++) await errorInTheMiddle(c, i)
    },
    { pipeline: true }
  )
})

test('LISTEN/NOTIFY', OPTS, async () => {
  const channel = unique()
  const listener = await connect()
  try {
    const got = new Set()
    let rolledBack = false
    let done
    const all = new Promise((resolve) => (done = resolve))
    listener.on('notification', (msg) => {
      assert.equal(msg.channel, channel)
      if (msg.payload === 'rolled back') rolledBack = true
      got.add(msg.payload)
      if (got.size >= 20) done()
    })
    await listener.query(`LISTEN ${channel}`)
    await withClients(4, async (c, i) => {
      for (let j = 0; j < 5; j++) await c.query('SELECT pg_notify($1, $2)', [channel, `${i}:${j}`])
      await c.query('BEGIN')
      await c.query(`NOTIFY ${channel}, 'rolled back'`)
      await c.query('ROLLBACK')
    })
    const timeout = sleep(5000).then(() => {
      throw new Error(`only ${got.size} of 20 notifications: ${[...got]}`)
    })
    await Promise.race([all, timeout])
    assert.equal(rolledBack, false, 'a rolled-back NOTIFY was delivered')
    assert.equal((await listener.query("SELECT 'still here' AS v")).rows[0].v, 'still here')
  } finally {
    await listener.end()
  }
})

test('session variables follow the client', OPTS, async () => {
  const base = unique()
  const alpha = `${base}_alpha`
  const beta = `${base}_beta`
  await direct(async (d) => {
    for (const s of [alpha, beta]) {
      await d.query(`CREATE SCHEMA ${s}; CREATE TABLE ${s}.whoami AS SELECT '${s}'::text AS v`)
    }
  })
  const moved = await withClients(CLIENTS, async (c, i) => {
    const mine = [alpha, beta, alpha, beta][i]
    const app = `js_app_${i}`
    const defaultPath = (await c.query('SHOW search_path')).rows[0].search_path
    const defaultApp = (await c.query('SHOW application_name')).rows[0].application_name
    if (mine) {
      await c.query(`SET search_path = ${mine}, public`)
      await c.query(`SET application_name = '${app}'`)
    }
    await c.query('BEGIN')
    await c.query("SET application_name = 'rolled_back'")
    await c.query('ROLLBACK')
    const pids = new Set()
    for (let k = 0; k < 30; k++) {
      const path = (await c.query('SHOW search_path')).rows[0].search_path
      const gotApp = (await c.query('SHOW application_name')).rows[0].application_name
      pids.add((await c.query('SELECT pg_backend_pid() AS p')).rows[0].p)
      if (mine) {
        assert.equal(path, `${mine}, public`, `client ${i}`)
        assert.equal(gotApp, app, `client ${i}`)
        assert.equal((await c.query('SELECT v FROM whoami')).rows[0].v, mine)
      } else {
        assert.equal(path, defaultPath, `client ${i} got a leaked search_path`)
        assert.equal(gotApp, defaultApp, `client ${i} got a leaked application_name`)
        await assert.rejects(c.query('SELECT v FROM whoami'), { code: '42P01' })
      }
      await sleep(2)
    }
    return pids.size
  })
  assert.ok(
    moved.some((m) => m > 1),
    'no client changed server: the test proves nothing'
  )
})
