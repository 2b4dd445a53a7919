#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A stand-in for the model APIs of the coding CLIs, on 127.0.0.1, for tests only.

  model-stub.py --port-file FILE --log FILE --script FILE

It speaks Anthropic Messages (POST /v1/messages, server-sent events when asked to stream),
OpenAI Responses (POST /v1/responses, server-sent events) and the Gemini API (POST
/v1beta/models/MODEL:streamGenerateContent?alt=sse, :generateContent; :countTokens is
answered without a step). Each request for a model's
turn takes the next step of the script (a JSON array), each step one of:
  {"text": "...", "usage": {...}}                  an answer
  {"tool": "NAME", "input": {...}, "usage": {...}} a call of the CLI's tool NAME
  {"error": STATUS, "message": "..."}             the API failing with that HTTP status, for
                                                   this request and every later one (a CLI
                                                   retries, and falls back to not streaming)
  {"hang": true}                                   no answer, until the client goes away
  {"expect": "TEXT", ...}                          any of the above, and the request must
                                                   contain TEXT (an earlier turn, say)
Every request is appended to the log as a JSON line. A request this stub does not know
(another path, no step left, an expectation not met) is logged with "unknown": true and
answered 404, and the test that reads the log fails on it.
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
args = None
steps = []


def log(entry):
    with lock, open(args.log, "a") as f:
        f.write(json.dumps(entry) + "\n")


def anthropic_usage(step):
    return dict({"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0}, **step.get("usage", {}))


def anthropic_message(step, req):
    """A step as one message, for a request that does not stream."""
    if "tool" in step:
        content = [{"type": "tool_use", "id": "toolu_stub%d" % len(steps), "name": step["tool"],
                    "input": step.get("input", {})}]
    else:
        content = [{"type": "text", "text": step.get("text", "")}]
    return {"id": "msg_stub%d" % len(steps), "type": "message", "role": "assistant",
            "model": step.get("model", req.get("model", "claude-stub")), "content": content,
            "stop_reason": "tool_use" if "tool" in step else "end_turn", "stop_sequence": None,
            "usage": anthropic_usage(step)}


def next_step():
    with lock:
        if steps and "error" in steps[0]:
            return steps[0]
        return steps.pop(0) if steps else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return raw.decode(), json.loads(raw or b"{}")
        except ValueError:
            return raw.decode(errors="replace"), {}

    def refuse(self, why, text=""):
        log({"path": self.path, "unknown": True, "why": why, "body": text[:2000]})
        out = json.dumps({"error": {"type": "not_found_error", "message": why}}).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self):
        self.refuse("GET is not part of the script")

    def do_HEAD(self):
        self.refuse("HEAD is not part of the script")

    def do_POST(self):
        text, req = self.body()
        path = self.path.split("?")[0]
        kind = {"/v1/messages": "anthropic", "/v1/responses": "openai", "/responses": "openai"}.get(path)
        if not kind and path.startswith("/v1beta/models/") and ":" in path:
            kind = "gemini"
            model, method = path[len("/v1beta/models/"):].split(":", 1)
            req["model"] = model
            if method == "countTokens":
                log({"path": path, "side": True})
                return self.json(200, {"totalTokens": 10})
            if method not in ("streamGenerateContent", "generateContent"):
                return self.refuse("unknown Gemini method " + method, text)
            req["stream"] = method == "streamGenerateContent"
        if not kind:
            return self.refuse("unknown path " + path, text)
        step = next_step()
        if step is None:
            return self.refuse("no step left in the script", text)
        if "expect" in step and step["expect"] not in text:
            return self.refuse("expected %r in the request" % step["expect"], text)
        log({"path": path, "step": step, "model": req.get("model"), "body": text[:400000]})
        if "error" in step:
            return self.error(kind, step)
        if step.get("hang"):
            return self.hang()
        if kind == "anthropic" and not req.get("stream"):
            return self.json(200, anthropic_message(step, req))
        if kind == "gemini":
            return self.gemini(step, req)
        if kind == "anthropic":
            return self.anthropic(step, req)
        return self.openai(step, req)

    def json(self, status, obj):
        out = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def error(self, kind, step):
        msg = step.get("message", "stub failure")
        if kind == "anthropic":
            body = {"type": "error", "error": {"type": "api_error", "message": msg}}
        elif kind == "gemini":
            body = {"error": {"code": step["error"], "message": msg, "status": "INVALID_ARGUMENT"}}
        else:
            body = {"error": {"type": "server_error", "code": "server_error", "message": msg}}
        self.json(step["error"], body)

    def hang(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            while True:
                self.wfile.write(b": waiting\n\n")
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:
            log({"hang_ended": True})

    def sse(self, events):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for name, data in events:
            self.wfile.write(("event: %s\ndata: %s\n\n" % (name, json.dumps(data))).encode())
        self.wfile.flush()
        self.close_connection = True

    def anthropic(self, step, req):
        usage = anthropic_usage(step)
        model = step.get("model", req.get("model", "claude-stub"))
        start = {"id": "msg_stub%d" % len(steps), "type": "message", "role": "assistant", "model": model, "content": [],
                 "stop_reason": None, "stop_sequence": None,
                 "usage": dict(usage, output_tokens=1)}
        ev = [("message_start", {"type": "message_start", "message": start})]
        if "tool" in step:
            ev += [("content_block_start", {"type": "content_block_start", "index": 0,
                                            "content_block": {"type": "tool_use", "id": "toolu_stub%d" % len(steps),
                                                              "name": step["tool"], "input": {}}}),
                   ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "input_json_delta",
                                                      "partial_json": json.dumps(step.get("input", {}))}}),
                   ("content_block_stop", {"type": "content_block_stop", "index": 0})]
            stop = "tool_use"
        else:
            ev += [("content_block_start", {"type": "content_block_start", "index": 0,
                                            "content_block": {"type": "text", "text": ""}}),
                   ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": step.get("text", "")}}),
                   ("content_block_stop", {"type": "content_block_stop", "index": 0})]
            stop = "end_turn"
        ev += [("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                  "usage": {"output_tokens": usage["output_tokens"]}}),
               ("message_stop", {"type": "message_stop"})]
        self.sse(ev)

    def gemini(self, step, req):
        u = step.get("usage", {})
        usage = {"promptTokenCount": u.get("input_tokens", 10), "candidatesTokenCount": u.get("output_tokens", 5),
                 "cachedContentTokenCount": u.get("cached_tokens", 0), "thoughtsTokenCount": u.get("reasoning_tokens", 0)}
        usage["totalTokenCount"] = usage["promptTokenCount"] + usage["candidatesTokenCount"] + usage["thoughtsTokenCount"]
        if "tool" in step:
            part = {"functionCall": {"name": step["tool"], "args": step.get("input", {})}}
        else:
            part = {"text": step.get("text", "")}
        chunk = {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
                 "usageMetadata": usage, "modelVersion": step.get("model", req.get("model", "gemini-stub"))}
        if not req.get("stream"):
            return self.json(200, chunk)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(("data: %s\r\n\r\n" % json.dumps(chunk)).encode())
        self.wfile.flush()
        self.close_connection = True

    def openai(self, step, req):
        u = step.get("usage", {})
        usage = {"input_tokens": u.get("input_tokens", 10),
                 "input_tokens_details": {"cached_tokens": u.get("cached_tokens", 0)},
                 "output_tokens": u.get("output_tokens", 5),
                 "output_tokens_details": {"reasoning_tokens": u.get("reasoning_tokens", 0)}}
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        rid = "resp_stub%d" % len(steps)
        if "tool" in step:
            item = {"type": "function_call", "id": "fc_" + rid, "call_id": "call_" + rid, "name": step["tool"],
                    "arguments": json.dumps(step.get("input", {}))}
        else:
            item = {"type": "message", "id": "msg_" + rid, "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": step.get("text", ""), "annotations": []}]}
        model = step.get("model", req.get("model", "gpt-stub"))
        self.sse([("response.created", {"type": "response.created", "response": {"id": rid, "model": model}}),
                  ("response.output_item.added", {"type": "response.output_item.added", "output_index": 0, "item": item}),
                  ("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": item}),
                  ("response.completed", {"type": "response.completed",
                                          "response": {"id": rid, "model": model, "usage": usage}})])


def main():
    global args, steps
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--script", required=True)
    args = p.parse_args()
    with open(args.script) as f:
        steps = json.load(f)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(args.port_file + ".new", "w") as f:
        f.write("%d\n" % server.server_address[1])
    import os
    os.rename(args.port_file + ".new", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
