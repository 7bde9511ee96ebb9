#!/usr/bin/env python3
"""A stand-in for an MCP-capable agent CLI, used by the worker tests.

Started by the dispatcher through a profile's command template (or by hand
with the worker environment set), it starts `kanban mcp` as its MCP server,
as an agent host would, and works its task through the tools only:
initialize, tools/list, kanban_show, kanban_heartbeat, kanban_complete.

Usage: mcp_agent.py [TASK_ID]   (the id is only echoed; the server's
environment decides the task). `KANBAN_BIN` names the kanban binary
(default: `kanban` on PATH). Exit 0 after a successful completion, 1 on
any protocol or tool error. Standard library only.
"""
import json
import os
import subprocess
import sys


class Server:
    def __init__(self, argv):
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.next_id = 1

    def send(self, msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def request(self, method, params):
        rid = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        for line in self.proc.stdout:
            msg = json.loads(line)
            if msg.get("id") == rid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
        raise RuntimeError(f"{method}: server closed the connection")

    def call(self, name, **arguments):
        result = self.request("tools/call", {"name": name, "arguments": arguments})
        body = json.loads(result["content"][0]["text"])
        if result.get("isError"):
            raise RuntimeError(f"{name}: {body.get('error')}")
        return body

    def close(self):
        self.proc.stdin.close()
        return self.proc.wait(timeout=20)


def main():
    kanban = os.environ.get("KANBAN_BIN", "kanban")
    server = Server([kanban, "mcp"])
    init = server.request(
        "initialize",
        {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "mcp-agent-test", "version": "1"},
        },
    )
    server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    print("instructions:", init.get("instructions", "")[:80], flush=True)
    tools = sorted(t["name"] for t in server.request("tools/list", {})["tools"])
    print("tools:", ",".join(tools), flush=True)
    shown = server.call("kanban_show")
    task = shown["task"]
    print("working on", task["id"], task["title"], "argv:", sys.argv[1:], flush=True)
    server.call("kanban_heartbeat", note="reading the task")
    done = server.call(
        "kanban_complete",
        summary=f"Agent finished {task['title']}",
        metadata={"agent": "mcp_agent.py", "tools_seen": len(tools)},
    )
    print("completed", json.dumps(done), flush=True)
    return 0 if server.close() == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # report and fail the attempt
        print(f"mcp_agent: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
