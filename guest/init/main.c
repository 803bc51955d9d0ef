/* PID 1 of a trc microVM. The steps are those of docs/guest.md, "What init does", in order. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "init.h"

static void read_config(struct config *cfg)
{
    if (wait_for_path(CONFIG_DEVICE, 5000) < 0)
        fatal("no config disk (%s)", CONFIG_DEVICE);
    unsigned char *disk; /* stays allocated: cfg points into it */
    char err[256];
    if (config_load(CONFIG_DEVICE, &disk, cfg, err, sizeof err) < 0)
        fatal("config: %s", err);
}

/* Without a clock event device no sleep, timeout or stop deadline ever ends: a kernel calibrating
   its APIC timer on a busy TCG host can disable it (docs/guest.md, "Kernel command line"). A fatal
   frame now beats a guest that hangs later; only an empty answer means no timer. */
static void require_timer(void)
{
    unsigned char *text;
    ssize_t n = read_file("/sys/devices/system/clockevents/clockevent0/current_device", 64, &text);
    if (n < 0)
        return;
    free(text);
    if (n == 0)
        fatal("the kernel has no timer (no clock event device): no sleep or stop deadline would end");
}

int main(int argc, char **argv)
{
    if (getpid() != 1) {
        if (argc >= 3 && strcmp(argv[1], "--check-config") == 0)
            return config_check_main(argc - 2, argv + 2);
        if (argc == 2 && strcmp(argv[1], "--tsc-khz") == 0)
            return tsc_khz_main();
        fprintf(stderr, "usage: init --check-config FILE... | init --tsc-khz   (as PID 1 it boots a trc guest)\n");
        return 2;
    }

    /* SIGCHLD is taken from a signalfd; blocked before the first fork. */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);

    mount_early();
    console_open();
    info("init started");
    require_timer();
    load_modules("/modules");

    struct config cfg;
    read_config(&cfg);

    switch_root();
    mount_runtime();
    if (cfg.hostname && sethostname(cfg.hostname, strlen(cfg.hostname)) < 0)
        fatal("hostname: %s", strerror(errno));
    net_setup(&cfg);

    struct app_user user;
    char err[512];
    if (user_resolve(cfg.user, &user, err, sizeof err) < 0)
        fatal("%s", err);
    write_secrets(&cfg, user.gid, cfg.user != NULL);
    mount_volumes(&cfg);

    int code = run_app(&cfg, &user);
    frame_text('X', "%d %d", code, oom_kills() > 0);
    shutdown_mounts(&cfg);
    power_off();
}
