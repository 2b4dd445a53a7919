/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "basic/spawn.h"

#include <errno.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif

#ifdef HAVE_ASAN
/* What AddressSanitizer's own vfork() calls in the parent: the child ran on this stack and
 * left its frames' redzones poisoned in the shadow below our stack pointer. */
void __asan_handle_vfork(void *sp);
#endif

#if defined(__x86_64__)
/* The child runs below the caller's stack pointer, past the 128-byte red zone that the
 * compiler may use in this function, with the stack aligned for a call. The call into child
 * is part of the same asm statement, so no compiler-generated code runs in the child. */
static long clone3_shared(struct clone_args *args, void (*child)(void *), void *userdata) {
        register long nr __asm__("rax") = SYS_clone3;
        register struct clone_args *a __asm__("rdi") = args;
        register long size __asm__("rsi") = sizeof(*args);
        register void (*fn)(void *) __asm__("rdx") = child;
        register void *arg __asm__("r8") = userdata;

        __asm__ volatile("syscall\n\t"
                         "test %%rax, %%rax\n\t"
                         "jnz 1f\n\t"
                         "lea -128(%%rsp), %%rsp\n\t"
                         "and $-16, %%rsp\n\t"
                         "mov %%r8, %%rdi\n\t"
                         "call *%%rdx\n\t"
                         "ud2\n"
                         "1:"
                         : "+r"(nr)
                         : "r"(a), "r"(size), "r"(fn), "r"(arg)
                         : "rcx", "r11", "memory", "cc");
        return nr;
}
#define HAVE_CLONE3_SHARED 1
#elif defined(__aarch64__)
/* arm64 has no red zone and keeps sp 16-byte aligned. */
static long clone3_shared(struct clone_args *args, void (*child)(void *), void *userdata) {
        register long nr __asm__("x8") = SYS_clone3;
        register long ret __asm__("x0") = (long) args;
        register long size __asm__("x1") = sizeof(*args);
        register void (*fn)(void *) __asm__("x2") = child;
        register void *arg __asm__("x3") = userdata;

        __asm__ volatile("svc #0\n\t"
                         "cbnz x0, 1f\n\t"
                         "mov x0, x3\n\t"
                         "blr x2\n\t"
                         "brk #0\n"
                         "1:"
                         : "+r"(ret)
                         : "r"(nr), "r"(size), "r"(fn), "r"(arg)
                         : "x30", "memory", "cc");
        return ret;
}
#define HAVE_CLONE3_SHARED 1
#endif

pid_t clone3_spawn(struct clone_args *args, void (*child)(void *userdata), void *userdata) {
        long pid;

        if (args->flags & (CLONE_VM | CLONE_VFORK | CLONE_THREAD) || args->stack)
                return -EINVAL;
#ifdef HAVE_CLONE3_SHARED
        args->flags |= CLONE_VM | CLONE_VFORK;
        pid = clone3_shared(args, child, userdata); /* the raw syscall returns -errno */
#ifdef HAVE_ASAN
        __asan_handle_vfork(__builtin_frame_address(0));
#endif
        args->flags &= ~(uint64_t) (CLONE_VM | CLONE_VFORK);
        return (pid_t) pid;
#else
        pid = syscall(SYS_clone3, args, sizeof(*args));
        if (pid < 0)
                return -errno;
        if (pid == 0)
                child(userdata);
        return (pid_t) pid;
#endif
}

void spawn_child_reset_signals(const sigset_t *mask) {
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigset_t none;

        sigemptyset(&none);
        (void) sigaction(SIGPIPE, &dfl, NULL);
        (void) sigprocmask(SIG_SETMASK, mask ?: &none, NULL);
}
