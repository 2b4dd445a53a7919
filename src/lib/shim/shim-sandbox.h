/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The shim's half of the agent sandbox (corrald(8), SECURITY): it reads the policy
 * corrald wrote to the run directory and starts the agent inside it. Libc only, like
 * the rest of the shim; corrald's half (sandbox.h) decides the policy.
 *
 * The agent's process tree lives in a pid namespace of its own whose init is a small
 * process of the shim's (the "sandbox init", root, outside the agent's reach): it builds
 * the mount namespace, starts the agent as its only child, forwards SIGTERM to the
 * agent's process group, reaps orphans, and tells the shim the agent's wait status.
 * The agent runs as its own uid and gid with no supplementary groups, no capabilities,
 * no_new_privs and a seccomp filter.
 *
 * The policy file holds one directive a line, "KEY\tVALUE" or "KEY\tVALUE\tVALUE":
 *   uid N / gid N          the agent's ids (required)
 *   chdir PATH             the agent's working directory, entered as the agent
 *   network none|host      none: a network namespace of its own, loopback only
 *   seccomp FILE           a BPF program (struct sock_filter[]) installed before execve
 *   tmpfs PATH             a fresh private writable tmpfs (mode 1777) at PATH
 *   hide PATH              nothing there: an empty tmpfs over a directory, /dev/null over a file
 *   rw PATH / ro PATH      PATH as on the host, writable / read-only (also under a hidden path)
 *   bind-ro SRC DST        SRC read-only at DST
 * The whole tree starts read-only and nosuid; then come the tmpfs, then hidden and
 * visible paths from the shallowest to the deepest (at one depth, hiding first), so that
 * the deeper of two nested paths wins. No path may contain a symbolic link.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SHIM_SANDBOX_FILE "sandbox"

/* The exit status of a sandbox init or agent that could not be set up (as a shell's for a
 * command it could not run); the reason goes back to the shim, which logs it. */
#define SHIM_SANDBOX_EXIT_FAILED 127

#define SANDBOX_MOUNTS_MAX 256
#define SANDBOX_FILTER_MAX 4096 /* BPF_MAXINSNS */

typedef enum SandboxMountKind {
        SANDBOX_TMPFS,
        SANDBOX_HIDE,
        SANDBOX_RW,
        SANDBOX_RO,
        SANDBOX_BIND_RO,
        _SANDBOX_MOUNT_KIND_MAX,
} SandboxMountKind;

typedef struct SandboxMount {
        SandboxMountKind kind;
        const char *src; /* what is shown; the same as dst but for bind-ro */
        const char *dst;
} SandboxMount;

typedef struct SandboxSpec {
        uid_t uid;
        gid_t gid;
        bool network_none;
        const char *chdir; /* NULL: stay where the shim is */
        const char *seccomp; /* NULL: no filter */
        SandboxMount mounts[SANDBOX_MOUNTS_MAX];
        size_t n_mounts;
} SandboxSpec;

/* Parse a policy file's text in place: the spec points into text. -EINVAL with a message
 * in error. */
int sandbox_spec_parse(char *text, SandboxSpec *ret, char *error, size_t error_size);

/* Start argv[0] (looked up in PATH) in the sandbox, with in, out and err as its standard
 * descriptors and mask as its signal mask. Returns 0 with the sandbox init's pid (the
 * run's "agent" for the shim: killing it kills every process of the sandbox) and the read
 * end of a pipe on which the init writes the agent's wait status (an int) once the agent
 * has exited; or an errno, with what failed in what. */
int sandbox_spawn(const SandboxSpec *spec, char *const argv[], int in, int out, int err, const sigset_t *mask, pid_t *ret_pid,
                  int *ret_status_fd, char *what, size_t what_size);
