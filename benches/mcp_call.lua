-- (e2) of `just bench`: every request is an MCP tools/call of a tool the proxy's
-- MCP policy allows for the token's scope, with the MCP 2026-07-28 routing
-- headers the data plane judges (it reads no body). Host and Authorization
-- come from wrk's -H options.
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"bench_tool","arguments":{}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "bench_tool"
