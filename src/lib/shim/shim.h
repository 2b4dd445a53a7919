/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corral-shim: the one small monitor per run (design §4.2). It is the parent of
 * the agent, owns the agent's output pipes and exit status, and writes both to
 * the run directory, so that nothing is lost while corrald is down.
 *
 * Invocation: corral-shim RUN_DIR AGENT [ARGS...], with the agent's environment
 * and working directory already in place. Two optional descriptors connect it to
 * corrald during the launch:
 *   fd 3 (SHIM_FD_GO)     read end: once everything else is set up, the shim waits
 *                         for one byte before it starts the agent; EOF instead (or
 *                         SIGTERM) aborts the launch, and no agent ever exists.
 *   fd 4 (SHIM_FD_REPORT) write end: the shim writes "<agent pid>\n" once the agent is
 *                         started, and again when it starts it once more (again, below);
 *                         it closes it once the agent can start no more (closed without a
 *                         pid: the agent could not be executed, status.json says 126 or 127).
 * corrald sends the go byte only once the run's row names the shim and its cgroup or
 * scope, so it need not wait for the report: the agent is born in the run's place.
 * Files in RUN_DIR: log.ndjson (appended), status.json (written atomically when
 * the agent has exited, from status.json.new, which is allocated when the agent starts so
 * that a full disk cannot lose the exit status), stdin (optional, read by the agent),
 * limits (optional, written by corrald: what the shim enforces itself, so that a stopped
 * or slow corrald does not lift them):
 *   timeout_ms=N        the agent is stopped N ms after it started: SIGTERM to its process
 *                       group, SIGKILL after grace_ms; status.json says "stopped":"timeout"
 *   grace_ms=N          (default 1000)
 *   log_bytes_max=N     output past N bytes stops the agent the same way: "log_limit"
 *   lease_file=PATH     the host's lease (hosts sharing a database): "until_mono_ms=N", the
 *                       CLOCK_MONOTONIC ms until which the host may run its runs, renewed
 *                       by corrald. When it passes with no renewal (corrald gone or frozen),
 *                       another host may take the run over: the agent's process group is
 *                       SIGKILLed at once, then the rest of cgroup; "stopped":"fenced"
 *   cgroup=PATH         the run's cgroup, for the above
 * stdout.tail, stderr.tail (written at the end, before status.json): the last SHIM_TAIL_MAX
 *   bytes of each stream, exactly as the agent wrote them; none for a silent stream.
 *   status.json's "tails":[N,M] gives their sizes, and is missing when they could not be
 *   written: then corrald reads the whole log for its excerpts.
 * again (optional, written by corrald for a coding CLI that resumes a session): a string the
 *   CLI prints when it cannot resume it, then the command line that starts it afresh, each
 *   NUL-terminated. When the agent exits non-zero, not stopped, and the tail of its stderr or
 *   stdout holds that string, the shim says so on stderr (SHIM_AGAIN_NOTE, a line of its
 *   own, which tells a reader of the log where the second start begins), kills what the first
 *   start left, and runs that once (never after a stop request),
 *   in the same run: the same log, stdin and limits (its timeout counts from the first
 *   start). status.json then says "again":true, and its exit status is the second one's.
 * When the log cannot be written (the disk is full), output is held in memory (up to
 * SHIM_PENDING_MAX) and written when it can be; what did not fit is counted in
 * "logDroppedBytes" and never blocks the agent.
 * status.json's "logFileBytes" and "logSha256" are the size and SHA-256 (lower-case hex) of
 * log.ndjson as the shim wrote it, from its first byte; missing when the file held bytes
 * the shim did not write, or does not have that size when the status is written. corrald
 * takes them for a file of that size and so never reads a log back to hash it.
 */
#pragma once

#include <stddef.h>

#define SHIM_FD_GO 3
#define SHIM_FD_REPORT 4

#define SHIM_LOG_FILE "log.ndjson"
#define SHIM_STATUS_FILE "status.json"
#define SHIM_STDIN_FILE "stdin"
#define SHIM_LIMITS_FILE "limits"
#define SHIM_AGAIN_FILE "again"
/* Also CLI_AGAIN_NOTE of control/cli-output.h, which cannot include this (test-adapters checks). */
#define SHIM_AGAIN_NOTE "corral-shim: the agent could not resume its session: starting it once more, afresh"
#define SHIM_STDOUT_TAIL_FILE "stdout.tail"
#define SHIM_STDERR_TAIL_FILE "stderr.tail"

/* What a stream's tail file keeps: corrald's excerpt and the margin its redaction needs
 * (RUNLOG_EXCERPT_MAX + RUNLOG_REDACT_MARGIN; runlog.c checks they agree). */
#define SHIM_TAIL_MAX (36 * 1024)

/* Output held in memory while the log cannot be written. */
#define SHIM_PENDING_MAX (4 * 1024 * 1024)

/* The nice value of a run's session (its autogroup), written to /proc/self/autogroup. */
#define SHIM_SESSION_NICE "19"

/* The exit status the shim gives an agent it could not execute (as a shell does). */
#define SHIM_EXIT_EXEC_FAILED 127

int shim_main(int argc, char *argv[]);
/* The same, for a shim that is not in its agent's working directory (one forked by the
 * spawner): the agent is started in agent_cwd. */
int shim_run(int argc, char *argv[], const char *agent_cwd);

/* Encode one chunk of agent output as a log.ndjson line (with the trailing newline).
 * Valid UTF-8 is written as a JSON string; anything else as base64 with
 * "encoding":"base64", so the log always holds the exact bytes. Returns the line
 * length; out must hold shim_line_max(size) bytes. */
size_t shim_format_line(char *out, const char *ts, const char *stream, const char *chunk, size_t size);
size_t shim_line_max(size_t size);
