/* Kernel modules from the initramfs: /modules lists their paths, dependencies first
   (scripts/build-guest-assets resolves the order from modules.dep). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

static int load_one(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = (int)syscall(SYS_finit_module, fd, "", 0);
    int e = errno;
    close(fd);
    if (rc < 0 && e == EEXIST)
        return 0; /* already loaded */
    errno = e;
    return rc;
}

void load_modules(const char *list)
{
    unsigned char *text;
    ssize_t len = read_file(list, 1 << 20, &text);
    if (len < 0)
        fatal("%s: %s", list, strerror(errno));
    char *save = NULL;
    for (char *line = strtok_r((char *)text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == 0 || line[0] == '#')
            continue;
        if (load_one(line) < 0)
            fatal("module %s: %s", line, strerror(errno));
    }
    free(text);
}
