/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <linux/sched.h>
#include <signal.h>
#include <sys/types.h>

/*
 * clone3() for starting a program, as cheap as posix_spawn(): on x86-64 and arm64 the child
 * shares the caller's memory (CLONE_VM | CLONE_VFORK) and the caller sleeps until the child
 * has exec'd or exited, so no page table of the caller is copied. Elsewhere the child gets
 * a copy of the caller's memory, as with fork().
 *
 * child(userdata) runs in the new process and must not return: it may only make
 * async-signal-safe calls that touch no memory the caller still needs, and end with
 * execve() or _exit(). args->flags must not hold CLONE_VM, CLONE_VFORK or CLONE_THREAD, and
 * args->stack must be unset: the child runs on the caller's stack while the caller waits.
 *
 * Returns the child's pid in the caller, or -errno.
 */
pid_t clone3_spawn(struct clone_args *args, void (*child)(void *userdata), void *userdata);

/* In a child about to execve: SIGPIPE back to its default (our programs ignore it, and an
 * ignored signal stays ignored across execve) and the signal mask set to mask, or emptied
 * when mask is NULL. Async-signal-safe. */
void spawn_child_reset_signals(const sigset_t *mask);
