/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The caller on the agent socket, from the kernel's word about the peer. */
#include "control/caller.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "basic/fd-util.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

int control_peer_run(Control *ctl, int fd, char **ret_run_id) {
        _cleanup_free_ char *run_id = NULL;
        _cleanup_close_ int pidfd = -EBADF;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        int r;

        *ret_run_id = NULL;
        if (!ctl->placement || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid <= 0)
                return 0;
        /* The peer as the process that connected: since Linux 6.5 the kernel hands out its
         * pidfd; before, one is opened for its pid, and a pid that was reused meanwhile is
         * caught below, as a process younger than the connection. */
        len = sizeof(int);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0) {
                uint64_t start, now_ticks;
                struct timespec ts;

                pidfd = (int) syscall(SYS_pidfd_open, cred.pid, 0);
                if (pidfd < 0)
                        return 0; /* gone: nobody */
                if (pid_start_ticks(cred.pid, &start) < 0 || clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
                        return 0;
                now_ticks = ((uint64_t) ts.tv_sec * 1000000000 + (uint64_t) ts.tv_nsec) /
                        (1000000000 / (uint64_t) sysconf(_SC_CLK_TCK));
                if (start > now_ticks)
                        return 0;
        }
        r = placement_run_of_pid(ctl->placement, cred.pid, &run_id);
        if (r < 0)
                return r;
        /* Still alive after its cgroup was read: the cgroup was that process's. */
        if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
                return 0;
        *ret_run_id = TAKE_PTR(run_id);
        return 0;
}

int control_identify_caller(Control *ctl, const char *run_id, char **ret_run_id, char **ret_agent_id, char **ret_company_id) {
        _cleanup_(run_donep) Run run = {};
        int r;

        *ret_run_id = *ret_agent_id = *ret_company_id = NULL;
        if (!supervisor_tracks(ctl->supervisor, run_id))
                return 0; /* a cgroup of a run this corrald does not run is nobody's */
        r = store_get(ctl->store, &run_entity, run_id, &run);
        if (r == -ENOENT || (r >= 0 && run.status != RUN_RUNNING))
                return 0; /* a leftover of a finished run speaks for nobody */
        if (r < 0)
                return r;
        supervisor_report_activity(ctl->supervisor, run.id);
        *ret_run_id = TAKE_PTR(run.id);
        *ret_agent_id = TAKE_PTR(run.agent_id);
        *ret_company_id = TAKE_PTR(run.company_id);
        return 0;
}
