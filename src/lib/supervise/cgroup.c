/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cgroup v2 file-system helpers.
 */
#include "supervise/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "basic/fd-util.h"

#define CGROUP_FILE_MAX (64 * 1024)

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s) {
        char *w = s;

        for (char *r = s; *r; r++) {
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
                        *w++ = (char) ((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
                        r += 3;
                } else
                        *w++ = *r;
        }
        *w = 0;
}

int cgroup_find_v2_mount(char **ret) {
        _cleanup_free_ char *text = NULL;
        char *line, *next;
        int r;

        r = read_full_file("/proc/self/mountinfo", 4 * 1024 * 1024, &text, NULL);
        if (r < 0)
                return r;
        for (line = text; line && *line; line = next) {
                char *fields[10] = {}, *dash, *save = NULL, *tok;
                int n = 0;

                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                /* "id parent maj:min root mountpoint options [optional...] - fstype source superopts" */
                dash = strstr(line, " - ");
                if (!dash)
                        continue;
                *dash = 0;
                for (tok = strtok_r(line, " ", &save); tok && n < 5; tok = strtok_r(NULL, " ", &save))
                        fields[n++] = tok;
                if (n < 5)
                        continue;
                tok = strtok_r(dash + 3, " ", &save);
                if (!tok || !streq(tok, "cgroup2"))
                        continue;
                unescape_octal(fields[4]);
                *ret = strdup(fields[4]);
                return *ret ? 0 : -ENOMEM;
        }
        return -ENOMEDIUM;
}

int cgroup_self_path(char **ret) {
        return cgroup_pid_path(0, ret);
}

int cgroup_pid_path(pid_t pid, char **ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        char *line, *next;
        int r;

        path = pid > 0 ? strprintf("/proc/%d/cgroup", (int) pid) : strdup("/proc/self/cgroup");
        if (!path)
                return -ENOMEM;
        r = read_full_file(path, 1024 * 1024, &text, NULL);
        if (r < 0)
                return r;
        for (line = text; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                /* The v2 entry is the one with hierarchy id 0 and no controllers: "0::/path". */
                if (strncmp(line, "0::", 3) == 0) {
                        *ret = strdup(line + 3);
                        return *ret ? 0 : -ENOMEM;
                }
        }
        return -ENOMEDIUM;
}

int cgroup_create(const char *path) {
        if (mkdir(path, 0755) < 0)
                return -errno;
        return 0;
}

int cgroup_open(const char *path, int *ret_fd) {
        int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

static int read_attr(const char *path, const char *attribute, char **ret) {
        _cleanup_free_ char *p = strprintf("%s/%s", path, attribute);
        if (!p)
                return -ENOMEM;
        return read_full_file(p, CGROUP_FILE_MAX, ret, NULL);
}

int cgroup_write(const char *path, const char *attribute, const char *value) {
        _cleanup_free_ char *p = strprintf("%s/%s", path, attribute);
        _cleanup_close_ int fd = -EBADF;
        size_t n = strlen(value);

        if (!p)
                return -ENOMEM;
        fd = open(p, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        ssize_t k = write(fd, value, n);
        if (k < 0)
                return -errno;
        return (size_t) k == n ? 0 : -EIO;
}

int cgroup_read_key(const char *path, const char *attribute, const char *key, uint64_t *ret) {
        _cleanup_free_ char *text = NULL;
        size_t klen = strlen(key);
        int r;

        r = read_attr(path, attribute, &text);
        if (r < 0)
                return r;
        for (char *line = text; line && *line;) {
                char *next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
                        return safe_atou64(line + klen + 1, ret);
                line = next;
        }
        return -ENOENT;
}

int cgroup_is_populated(const char *path) {
        uint64_t v;
        int r = cgroup_read_key(path, "cgroup.events", "populated", &v);
        return r < 0 ? r : v > 0;
}

int cgroup_kill(const char *path) {
        return cgroup_write(path, "cgroup.kill", "1");
}

int cgroup_count_procs(const char *path, unsigned *ret) {
        _cleanup_free_ char *text = NULL;
        unsigned n = 0;
        int r;

        r = read_attr(path, "cgroup.procs", &text);
        if (r < 0)
                return r;
        for (const char *p = text; *p; p++)
                if (*p == '\n')
                        n++;
        *ret = n;
        return 0;
}

int cgroup_remove(const char *path) {
        if (rmdir(path) < 0)
                return -errno;
        return 0;
}

static bool word_in(const char *list, const char *word) {
        size_t n = strlen(word);

        for (const char *p = list; (p = strstr(p, word)); p += n)
                if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || p[n] == 0))
                        return true;
        return false;
}

int cgroup_controller_available(const char *path, const char *controller) {
        _cleanup_free_ char *text = NULL;
        int r = read_attr(path, "cgroup.controllers", &text);
        return r < 0 ? r : word_in(text, controller);
}

int cgroup_enable_controller(const char *path, const char *controller) {
        _cleanup_free_ char *value = strprintf("+%s", controller);
        return value ? cgroup_write(path, "cgroup.subtree_control", value) : -ENOMEM;
}
