-- wrk script: POST one AuthZEN evaluation (an allow under the example policies).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("MANDATE_TOKEN")
wrk.body = [[{"subject":{"type":"agent","id":"deploy-bot"},"action":{"name":"token:issue"},"resource":{"type":"resource","id":"github","properties":{"kind":"mcp","owner":"ben@example.com","sensitivity":"internal"}},"context":{"env":"prod","time":"2026-11-16T10:00:00Z","attestation":{"provider":"k8s-prod","claims":{}}}}]]

done = function(summary, latency, requests)
  io.write(string.format("requests/s %.0f  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  errors %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
