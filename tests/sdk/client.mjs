// Test client for tests/sdk/sdk_e2etest.cpp: the official PowerSync Node SDK (@powersync/node) with a
// local SQLite file, syncing the demo schema from a sluice server over POST /sync/stream and uploading
// its local writes to POST /upload.
//
// Between the SDK and sluice sits a small recording HTTP proxy (in this process), so the test can see
// what went over the wire without depending on SDK internals: every /sync/stream request body (the
// buckets and their `after`) and how many ops each stream's `data` lines carried.
//
// The driver talks to this process with one JSON command per stdin line; each gets one JSON reply line
// on stdout ({"ok":true,...} or {"ok":false,"error":"..."}). SDK logs go to stderr.
//   {"cmd":"connect","endpoint":"http://127.0.0.1:PORT","token":"<jwt>"}   starts syncing over HTTP
//       (optional "checkpointMode": "legacy" (default) or "requests")
//   {"cmd":"token","token":"<jwt>"}                                      the token fetchCredentials returns from now on
//   {"cmd":"query","sql":"SELECT ...","params":[...]}                     rows of the local database
//   {"cmd":"rows","sql":"SELECT ..."}                                    the same as text: values joined by '|', rows by '\n'
//   {"cmd":"execute","sql":"INSERT ...","params":[...]}                   a local write (queued for upload)
//   {"cmd":"status"}                                                       the SDK's sync status
//   {"cmd":"streams"}                                                      the recorded /sync/stream requests
//   {"cmd":"uploads"}                                                      the recorded /upload batches
//   {"cmd":"requests"}                                                     how many requests per method and path
//   {"cmd":"close"}                                                        disconnects, closes, exits
//
// Usage: node client.mjs <database file>
import http from 'node:http';
import readline from 'node:readline';
import path from 'node:path';

import { PowerSyncDatabase, SyncStreamConnectionMethod, Schema, Table, column, LogLevels } from '@powersync/node';

const dbPath = process.argv[2];
if (!dbPath) {
  console.error('usage: node client.mjs <database file>');
  process.exit(2);
}

// The demo schema's synced tables (deploy/demo/sync-rules.yaml); `id` is implicit.
const schema = new Schema({
  users: new Table({ name: column.text }),
  lists: new Table({ owner_id: column.text, name: column.text, created_at: column.text }),
  todos: new Table({ list_id: column.text, description: column.text, completed: column.integer, created_at: column.text })
});

// ---- recording proxy -------------------------------------------------------------------------------

let upstream = null;  // {host, port}
const streams = [];   // one per /sync/stream request: {request, status, ops, lines, ended}
const uploads = [];   // one per /upload request: {request, status, response}
const requests = {};  // "METHOD /path" (no query) → count, for every request the SDK made

function countLine(record, line) {
  if (line.length === 0) return;
  let parsed;
  try {
    parsed = JSON.parse(line);
  } catch {
    record.malformed += 1;
    return;
  }
  const kind = Object.keys(parsed)[0];
  record.lines[kind] = (record.lines[kind] ?? 0) + 1;
  if (kind === 'data') record.ops += parsed.data.data.length;
}

function proxyRequest(clientReq, clientRes) {
  const chunks = [];
  clientReq.on('data', (c) => chunks.push(c));
  clientReq.on('end', () => {
    const body = Buffer.concat(chunks);
    const key = `${clientReq.method} ${clientReq.url.split('?')[0]}`;
    requests[key] = (requests[key] ?? 0) + 1;
    const isStream = clientReq.url === '/sync/stream';
    const isUpload = clientReq.url === '/upload';
    let record = null;
    if (isStream) {
      record = { request: safeJson(body), status: 0, ops: 0, lines: {}, malformed: 0, ended: false };
      streams.push(record);
    } else if (isUpload) {
      record = { request: safeJson(body), status: 0, response: null };
      uploads.push(record);
    }
    const headers = { ...clientReq.headers, host: `${upstream.host}:${upstream.port}` };
    const upstreamReq = http.request(
      { host: upstream.host, port: upstream.port, method: clientReq.method, path: clientReq.url, headers },
      (upstreamRes) => {
        if (record) record.status = upstreamRes.statusCode;
        clientRes.writeHead(upstreamRes.statusCode, upstreamRes.headers);
        let pending = '';
        const responseChunks = [];
        upstreamRes.on('data', (chunk) => {
          if (isStream && upstreamRes.statusCode === 200) {
            pending += chunk.toString('utf8');
            let nl;
            while ((nl = pending.indexOf('\n')) >= 0) {
              countLine(record, pending.slice(0, nl));
              pending = pending.slice(nl + 1);
            }
          } else if (isUpload) {
            responseChunks.push(chunk);
          }
          clientRes.write(chunk);
        });
        upstreamRes.on('end', () => {
          if (isStream) record.ended = true;
          if (isUpload) record.response = safeJson(Buffer.concat(responseChunks));
          clientRes.end();
        });
        upstreamRes.on('error', () => clientRes.destroy());
      }
    );
    upstreamReq.on('error', (err) => {
      // sluice is down (e.g. restarting): answer as a gateway would; the SDK retries.
      if (record) {
        record.status = 502;
        record.ended = true;
      }
      if (!clientRes.headersSent) {
        clientRes.writeHead(502, { 'content-type': 'application/json' });
        clientRes.end(JSON.stringify({ error: { code: 'PROXY', status: 502, description: String(err) } }));
      } else {
        clientRes.destroy();
      }
    });
    // The SDK went away (it aborts a stream to reconnect or disconnect): drop the upstream request too.
    clientRes.on('close', () => {
      if (!clientRes.writableFinished) upstreamReq.destroy();
    });
    upstreamReq.end(body);
  });
}

function safeJson(buffer) {
  try {
    return JSON.parse(buffer.toString('utf8'));
  } catch {
    return null;
  }
}

const proxy = http.createServer(proxyRequest);
await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
const proxyUrl = `http://127.0.0.1:${proxy.address().port}`;

// ---- the SDK ----------------------------------------------------------------------------------------

// SDK logs go to stderr (stdout carries the replies); SLUICE_SDK_LOG=debug shows more.
const minLevel = LogLevels[process.env.SLUICE_SDK_LOG ?? 'info'] ?? LogLevels.info;
const logger = {
  log(record) {
    if (record.level < minLevel) return;
    const error = record.error === undefined ? '' : ` ${record.error?.stack ?? record.error}`;
    process.stderr.write(`[sdk ${record.level}] ${record.message}${error}\n`);
  }
};

const db = new PowerSyncDatabase({
  schema,
  database: { dbFilename: path.basename(dbPath), dbLocation: path.dirname(dbPath) },
  logger
});
await db.init();

let token = null;
const connector = {
  async fetchCredentials() {
    return { endpoint: proxyUrl, token };
  },
  // Posts the pending local writes to sluice's POST /upload as one batch; the batch is complete only
  // when sluice answered with a final result.
  async uploadData(database) {
    const batch = await database.getCrudBatch(100);
    if (!batch) return;
    const clientId = await database.getClientId();
    const ops = batch.crud.map((entry) => {
      const op = { op_id: entry.clientId, op: entry.op, type: entry.table, id: entry.id };
      if (entry.opData) op.data = entry.opData;
      return op;
    });
    const batchId = `${clientId}-${batch.crud[0].clientId}`;
    const response = await fetch(`${proxyUrl}/upload`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ client_id: clientId, batch_id: batchId, ops })
    });
    const text = await response.text();
    // 200 is a final answer (applied, partial or rejected: the server's state wins after the next
    // checkpoint); anything else is retried by the SDK.
    if (!response.ok) throw new Error(`POST /upload: HTTP ${response.status}: ${text}`);
    const status = JSON.parse(text)?.data?.status;
    if (status !== 'applied') process.stderr.write(`[client] upload ${batchId} ${status}: ${text}\n`);
    await batch.complete();
  }
};

function statusJson() {
  const s = db.currentStatus;
  return {
    connected: s.connected,
    connecting: s.connecting,
    hasSynced: s.hasSynced ?? false,
    downloading: s.dataFlowStatus?.downloading ?? false,
    uploading: s.dataFlowStatus?.uploading ?? false,
    lastSyncedAt: s.lastSyncedAt ? s.lastSyncedAt.toISOString() : null,
    downloadError: s.dataFlowStatus?.downloadError ? String(s.dataFlowStatus.downloadError) : null,
    uploadError: s.dataFlowStatus?.uploadError ? String(s.dataFlowStatus.uploadError) : null,
    priorities: (s.priorityStatusEntries ?? []).map((e) => ({ priority: e.priority, hasSynced: e.hasSynced ?? false }))
  };
}

async function handle(command) {
  switch (command.cmd) {
    case 'connect': {
      const url = new URL(command.endpoint);
      upstream = { host: url.hostname, port: Number(url.port) };
      token = command.token;
      await db.connect(connector, {
        connectionMethod: SyncStreamConnectionMethod.HTTP,
        retryDelayMs: 200,
        crudUploadThrottleMs: 50,
        // 'legacy' (the SDK's default): GET /write-checkpoint2.json after uploads; 'requests': POST
        // /sync/checkpoint-request with the client's own increasing ids.
        checkpointMode: command.checkpointMode ?? 'legacy'
      });
      return {};
    }
    case 'token':
      // What fetchCredentials returns from now on (the SDK asks again when its token expires).
      token = command.token;
      return {};
    case 'query':
      return { rows: await db.getAll(command.sql, command.params ?? []) };
    case 'rows': {
      // Rows as text for exact comparison: values joined by '|', NULL as "NULL", rows joined by '\n'.
      const rows = await db.getAll(command.sql, command.params ?? []);
      const text = rows.map((row) => Object.values(row).map((v) => (v === null ? 'NULL' : String(v))).join('|'));
      return { text: text.join('\n') };
    }
    case 'execute':
      await db.execute(command.sql, command.params ?? []);
      return {};
    case 'status':
      return { status: statusJson() };
    case 'streams':
      return { streams };
    case 'uploads':
      return { uploads };
    case 'requests':
      return { requests };
    case 'close':
      await db.disconnect();
      await db.close();
      proxy.close();
      proxy.closeAllConnections?.();
      return { closing: true };
    default:
      throw new Error(`unknown command ${JSON.stringify(command.cmd)}`);
  }
}

const input = readline.createInterface({ input: process.stdin, terminal: false });
for await (const line of input) {
  if (line.trim().length === 0) continue;
  let reply;
  let closing = false;
  try {
    const result = await handle(JSON.parse(line));
    closing = result.closing === true;
    reply = { ok: true, ...result };
  } catch (err) {
    reply = { ok: false, error: String(err?.stack ?? err) };
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
  if (closing) break;
}
process.exit(0);
