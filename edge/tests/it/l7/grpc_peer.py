"""A real gRPC stack (Debian's python3-grpcio) on both sides of the L7 tier,
for edge/tests/it/l7/grpc.rs. No generated code: generic handlers with bytes
in and out, and the two fields of grpc.health.v1 encoded by hand.

  grpc_peer.py serve NAME
      A server on 127.0.0.1:0; prints "PORT n" once it listens. Every reply
      names NAME. Reads commands on stdin, answering "ok" to each:
      "health STATUS" (SERVING, NOT_SERVING) sets what Health/Check says.
      Prints "cancelled METHOD" when a call ends before its handler did.
      Stops at the end of stdin.
  grpc_peer.py call TARGET METHOD REQUEST COUNT TIMEOUT
      COUNT unary calls of /demo.Echo/METHOD on ONE channel, one after
      another, each with a deadline of TIMEOUT seconds (0: none); prints
      one JSON object {"results": [{"code", "details", "reply"}...]}.
  grpc_peer.py streams TARGET
      A server-streaming, a client-streaming and a bidi call; prints JSON.
"""

import json
import sys
import threading
import time
from concurrent import futures

import grpc

HEALTH_CODES = {"UNKNOWN": 0, "SERVING": 1, "NOT_SERVING": 2}


def identity(data):
    return data


def serve(name):
    health = {"status": HEALTH_CODES["SERVING"]}
    out_lock = threading.Lock()

    def say(line):
        with out_lock:
            print(line, flush=True)

    def reply(request, context, **extra):
        body = {
            "backend": name,
            "request": request.decode(),
            "time_remaining": context.time_remaining(),
            "metadata": {k: v for k, v in context.invocation_metadata()},
        }
        body.update(extra)
        return json.dumps(body).encode()

    def who(request, context):
        return reply(request, context)

    def slow(request, context):
        # Sleeps REQUEST seconds unless the call ends first.
        end = time.monotonic() + float(request.decode())
        while time.monotonic() < end:
            if not context.is_active():
                say("cancelled Slow")
                return b""
            time.sleep(0.01)
        return reply(request, context)

    def fail(request, context):
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no such thing: " + request.decode())

    def count(request, context):
        for i in range(int(request.decode())):
            yield f"{name} {i}".encode()

    def total(requests, context):
        parts = [r.decode() for r in requests]
        return json.dumps({"backend": name, "parts": parts}).encode()

    def chat(requests, context):
        for r in requests:
            yield f"{name}: {r.decode()}".encode()

    def check(request, context):
        # HealthCheckRequest { string service = 1; }: only "" is served.
        if request not in (b"", b"\x0a\x00"):
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        # HealthCheckResponse { ServingStatus status = 1; }
        return bytes([0x08, health["status"]])

    def unary(fn):
        return grpc.unary_unary_rpc_method_handler(fn, identity, identity)

    echo = grpc.method_handlers_generic_handler(
        "demo.Echo",
        {
            "Who": unary(who),
            "Slow": unary(slow),
            "Fail": unary(fail),
            "Count": grpc.unary_stream_rpc_method_handler(count, identity, identity),
            "Total": grpc.stream_unary_rpc_method_handler(total, identity, identity),
            "Chat": grpc.stream_stream_rpc_method_handler(chat, identity, identity),
        },
    )
    health_service = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": unary(check)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((echo, health_service))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    say(f"PORT {port}")
    for line in sys.stdin:
        words = line.split()
        if len(words) == 2 and words[0] == "health" and words[1] in HEALTH_CODES:
            health["status"] = HEALTH_CODES[words[1]]
            say("ok")
        else:
            say(f"unknown command {line.strip()!r}")
    server.stop(0)


def call(target, method, request, count, timeout):
    results = []
    with grpc.insecure_channel(target) as channel:
        stub = channel.unary_unary(f"/demo.Echo/{method}", identity, identity)
        for _ in range(int(count)):
            try:
                data = stub(request.encode(), timeout=float(timeout) or None)
                results.append({"code": "OK", "details": None, "reply": json.loads(data)})
            except grpc.RpcError as e:
                results.append({"code": e.code().name, "details": e.details(), "reply": None})
    print(json.dumps({"results": results}))


def streams(target):
    with grpc.insecure_channel(target) as channel:
        count = channel.unary_stream("/demo.Echo/Count", identity, identity)
        total = channel.stream_unary("/demo.Echo/Total", identity, identity)
        chat = channel.stream_stream("/demo.Echo/Chat", identity, identity)
        counted = [m.decode() for m in count(b"50", timeout=10)]
        parts = (f"part {i}".encode() for i in range(20))
        totalled = json.loads(total(parts, timeout=10))
        said = [m.decode() for m in chat((f"line {i}".encode() for i in range(10)), timeout=10)]
    print(json.dumps({"count": counted, "total": totalled, "chat": said}))


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    {"serve": serve, "call": call, "streams": streams}[mode](*args)
