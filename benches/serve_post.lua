-- wrk script for benches/serve_load.sh: POSTs the PNG named by DIGITNET_LOAD_PNG to /api/predict.
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
local f = assert(io.open(os.getenv("DIGITNET_LOAD_PNG"), "rb"))
wrk.body = f:read("*all")
f:close()
