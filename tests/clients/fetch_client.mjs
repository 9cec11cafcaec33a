// A non-Python client for the proxy tests: Node's built-in fetch, no packages.
// Usage: node fetch_client.mjs '[[URL, BODY_JSON], ...]'
// Sends each request in turn; prints one JSON array: for each, the status, the response
// headers, and the body as read from the stream.
const requests = JSON.parse(process.argv[2]);
const results = [];
for (const [url, body] of requests) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": "sk-ant-node-secret-key" },
    body,
  });
  const chunks = [];
  const decoder = new TextDecoder();
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(decoder.decode(value, { stream: true }));
  }
  const headers = Object.fromEntries(response.headers.entries());
  results.push({ status: response.status, headers, body: chunks.join("") });
}
process.stdout.write(JSON.stringify(results) + "\n");
