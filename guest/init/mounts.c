/* Filesystems: the early mounts, the overlay root and the switch to it, tmpfs for /tmp, /run and
   the secrets, volumes, and the orderly unmount before power-off. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "init.h"

/* The initramfs root, kept open after the switch: the release and scratch mounts live under it
   (out of the app's sight) and are remounted read-only through it at shutdown. */
static int oldroot = -1;

static void must_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data)
{
    if (mkdir_p(dst, 0755) < 0)
        fatal("mkdir %s: %s", dst, strerror(errno));
    if (mount(src, dst, type, flags, data) < 0)
        fatal("mount %s on %s (%s): %s", src, dst, type, strerror(errno));
}

void mount_early(void)
{
    /* No console yet: a failure here powers off silently, which the host sees as an early exit. */
    must_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    must_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    must_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
}

int wait_for_path(const char *path, int timeout_ms)
{
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (int waited = 0; access(path, F_OK) < 0; waited += 10) {
        if (waited >= timeout_ms)
            return -1;
        nanosleep(&tick, NULL);
    }
    return 0;
}

static void wait_for_disk(const char *dev, const char *what)
{
    /* virtio probing is synchronous in module init, but give devtmpfs a moment anyway. */
    if (wait_for_path(dev, 5000) < 0)
        fatal("no %s disk (%s)", what, dev);
}

/* Deletes everything on the initramfs (device dev) below dirfd; mount points are on other devices
   and stay. This frees the initramfs' memory: it cannot be unmounted. */
static void remove_tree(int dirfd, dev_t dev)
{
    DIR *dir = fdopendir(dirfd);
    if (!dir) {
        close(dirfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != dev)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                remove_tree(sub, dev);
            unlinkat(dirfd, e->d_name, AT_REMOVEDIR);
        } else {
            unlinkat(dirfd, e->d_name, 0);
        }
    }
    closedir(dir);
}

void switch_root(void)
{
    wait_for_disk("/dev/vda", "root");
    must_mount("/dev/vda", "/lower", "ext4", MS_RDONLY, NULL);
    wait_for_disk("/dev/vdb", "scratch");
    must_mount("/dev/vdb", "/scratch", "ext4", MS_NOSUID | MS_NODEV, NULL);
    if (mkdir_p("/scratch/upper", 0755) < 0 || mkdir_p("/scratch/work", 0755) < 0)
        fatal("scratch disk: mkdir: %s", strerror(errno));
    must_mount("overlay", "/newroot", "overlay", 0, "lowerdir=/lower,upperdir=/scratch/upper,workdir=/scratch/work");

    static const char *const moved[] = {"/proc", "/sys", "/dev"};
    for (size_t i = 0; i < sizeof moved / sizeof *moved; i++) {
        char target[64];
        snprintf(target, sizeof target, "/newroot%s", moved[i]);
        if (mkdir_p(target, 0755) < 0 || mount(moved[i], target, NULL, MS_MOVE, NULL) < 0)
            fatal("move %s: %s", moved[i], strerror(errno));
    }

    struct stat st;
    if (stat("/", &st) < 0)
        fatal("stat /: %s", strerror(errno));
    int root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        fatal("open /: %s", strerror(errno));
    remove_tree(root, st.st_dev);
    oldroot = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

    /* The initramfs cannot be pivot_root'ed: move the new root over it and chroot. */
    if (chdir("/newroot") < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0)
        fatal("switch root: %s", strerror(errno));
}

static void try_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data)
{
    if (mkdir_p(dst, 0755) < 0 || mount(src, dst, type, flags, data) < 0)
        info("mount %s (%s): %s", dst, type, strerror(errno));
}

void mount_runtime(void)
{
    must_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    must_mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
    try_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666");
    try_mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    try_mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    /* What udev would make and programs expect (bash process substitution, /dev/stdout). */
    static const char *const links[][2] = {
        {"/proc/self/fd", "/dev/fd"},
        {"/proc/self/fd/0", "/dev/stdin"},
        {"/proc/self/fd/1", "/dev/stdout"},
        {"/proc/self/fd/2", "/dev/stderr"},
    };
    for (size_t i = 0; i < sizeof links / sizeof *links; i++)
        if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST)
            info("symlink %s: %s", links[i][1], strerror(errno));
}

void write_secrets(const struct config *cfg, gid_t gid, int group_readable)
{
    if (!cfg->secrets)
        return;
    /* A tmpfs of its own, so the bytes never reach a disk and the directory can be made read-only. */
    must_mount("tmpfs", "/run/secrets", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=16m");
    mode_t mode = group_readable ? 0440 : 0400;
    if (!group_readable)
        gid = 0;
    int fd = open("/run/secrets/platform.env", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
    if (fd < 0)
        fatal("secrets file: %s", strerror(errno));
    if (write_all(fd, cfg->secrets, cfg->secrets_len) < 0 || fchown(fd, 0, gid) < 0 || fchmod(fd, mode) < 0 ||
        close(fd) < 0)
        fatal("secrets file: %s", strerror(errno));
    if (mount(NULL, "/run/secrets", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        info("remount /run/secrets read-only: %s", strerror(errno));
}

static void volume_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "/mnt/volumes/%s", name); }

void mount_volumes(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->nvolumes; i++) {
        char dev[16], path[128];
        snprintf(dev, sizeof dev, "/dev/vd%c", (char)('d' + i));
        volume_path(path, sizeof path, cfg->volumes[i]);
        wait_for_disk(dev, cfg->volumes[i]);
        must_mount(dev, path, "ext4", MS_NOSUID | MS_NODEV, NULL);
    }
}

/* After every other process is gone: volumes are unmounted (they outlive the instance), the root and
   scratch are made read-only so their journals are clean; failures are reported, not fatal. */
void shutdown_mounts(const struct config *cfg)
{
    sync();
    for (size_t i = cfg->nvolumes; i-- > 0;) {
        char path[128];
        volume_path(path, sizeof path, cfg->volumes[i]);
        if (umount2(path, 0) < 0)
            info("umount %s: %s", path, strerror(errno));
    }
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
        info("remount / read-only: %s", strerror(errno));
    if (oldroot >= 0 && fchdir(oldroot) == 0) {
        if (mount(NULL, "scratch", NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
            info("remount the scratch disk read-only: %s", strerror(errno));
        if (chdir("/") < 0)
            info("chdir /: %s", strerror(errno));
    }
}
