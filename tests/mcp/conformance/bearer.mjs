// Preloaded into the MCP conformance suite (node --import): its server mode
// sends no credentials, and /mcp requires them. This adds
// `Authorization: Bearer $MCP_TEST_BEARER` to every request the suite sends
// to $MCP_TEST_ORIGIN: through undici's global dispatcher, which both the
// built-in fetch and the suite's own undici `request` use, and through
// `http.request`, which one scenario calls directly. Nothing in Portcullis
// is relaxed for the suite: it is a client holding a real token.
import http from "node:http";
import { createRequire, syncBuiltinESMExports } from "node:module";

const require = createRequire(process.env.MCP_TEST_UNDICI_FROM);
const { Agent, setGlobalDispatcher } = require("undici");
const token = process.env.MCP_TEST_BEARER;
const origin = process.env.MCP_TEST_ORIGIN;

function withBearer(headers) {
  const value = `Bearer ${token}`;
  if (headers == null) return { authorization: value };
  if (Array.isArray(headers)) {
    // a flat [name, value, ...] list or a list of pairs
    if (headers.length > 0 && Array.isArray(headers[0])) return [...headers, ["authorization", value]];
    return [...headers, "authorization", value];
  }
  if (typeof headers[Symbol.iterator] === "function" && typeof headers.entries === "function") {
    return [...headers.entries(), ["authorization", value]];
  }
  return { ...headers, authorization: value };
}

setGlobalDispatcher(
  new Agent().compose((dispatch) => (opts, handler) => {
    const target = String(opts.origin ?? "");
    if (target.replace(/\/$/, "") === origin) opts = { ...opts, headers: withBearer(opts.headers) };
    return dispatch(opts, handler);
  }),
);

const target = new URL(origin);
const plainRequest = http.request;
http.request = function request(options, ...rest) {
  const o = options;
  if (o && typeof o === "object" && !(o instanceof URL) && o.hostname === target.hostname && String(o.port) === target.port) {
    return plainRequest.call(this, { ...o, headers: withBearer(o.headers) }, ...rest);
  }
  return plainRequest.call(this, options, ...rest);
};
syncBuiltinESMExports();
