/* The app: fork and exec, then one poll() loop that frames its output, forwards the host's
   commands, reaps every zombie and ends when the app's own process has exited. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#include "init.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

extern char **environ;

/* One output pipe and its partial line. */
struct stream {
    int fd;
    char type; /* 'O' or 'E' */
    size_t len;
    char buf[OUTPUT_LINE_MAX];
};

static void stream_frame_lines(struct stream *s)
{
    size_t start = 0;
    for (size_t i = 0; i < s->len; i++) {
        if (s->buf[i] == '\n') {
            frame_bytes(s->type, s->buf + start, i - start);
            start = i + 1;
        }
    }
    if (start == 0 && s->len == sizeof s->buf) {
        frame_bytes(s->type, s->buf, s->len); /* a full buffer without a newline: split here */
        start = s->len;
    }
    memmove(s->buf, s->buf + start, s->len - start);
    s->len -= start;
}

/* Reads once; on end of file frames the last partial line and closes the pipe. */
static void stream_read(struct stream *s)
{
    ssize_t n = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        if (s->len > 0)
            frame_bytes(s->type, s->buf, s->len);
        s->len = 0;
        close(s->fd);
        s->fd = -1;
        return;
    }
    s->len += (size_t)n;
    stream_frame_lines(s);
}

static size_t name_len(const char *entry) { return (size_t)(strchr(entry, '=') - entry); }

static int has_name(char **env, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (name_len(env[i]) == len && strncmp(env[i], name, len) == 0)
            return 1;
    return 0;
}

static const char *const *sort_base;
static int by_name_then_index(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const char *x = sort_base[i], *y = sort_base[j];
    size_t lx = name_len(x), ly = name_len(y);
    int c = memcmp(x, y, lx < ly ? lx : ly);
    if (c == 0)
        c = (lx > ly) - (lx < ly);
    return c ? c : (i > j) - (i < j);
}

/* The app's environment: the config's entries where a later NAME wins (kept in first-seen order
   of the winners), plus HOME and PATH when absent. */
static char **build_env(const struct config *cfg, const struct app_user *u)
{
    size_t n = cfg->nenv;
    size_t *order = xmalloc(n * sizeof *order);
    unsigned char *keep = xmalloc(n);
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
        keep[i] = 1;
    }
    sort_base = (const char *const *)cfg->env;
    qsort(order, n, sizeof *order, by_name_then_index);
    for (size_t k = 0; k + 1 < n; k++) {
        const char *a = cfg->env[order[k]], *b = cfg->env[order[k + 1]];
        if (name_len(a) == name_len(b) && memcmp(a, b, name_len(a)) == 0)
            keep[order[k]] = 0;
    }
    char **env = xmalloc((n + 3) * sizeof *env);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (keep[i])
            env[m++] = cfg->env[i];
    if (!has_name(env, m, "HOME")) {
        char *home = xmalloc(strlen(u->home) + 6);
        sprintf(home, "HOME=%s", u->home);
        env[m++] = home;
    }
    if (!has_name(env, m, "PATH"))
        env[m++] = (char *)"PATH=" DEFAULT_PATH;
    env[m] = NULL;
    free(order);
    free(keep);
    return env;
}

enum stage { STAGE_SETUP, STAGE_WORKDIR, STAGE_GROUPS, STAGE_GID, STAGE_UID, STAGE_EXEC };
static const char *const stage_names[] = {"set up stdio", "workdir", "setgroups", "setgid", "setuid", "exec"};
struct failure {
    int stage;
    int err;
};

static void child(const struct config *cfg, const struct app_user *u, int out, int err, int status, char **env)
{
    struct failure f = {STAGE_SETUP, 0};
    sigset_t none;
    sigemptyset(&none);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (setsid() < 0 || sigprocmask(SIG_SETMASK, &none, NULL) < 0 || null < 0 || dup2(null, 0) < 0 ||
        dup2(out, 1) < 0 || dup2(err, 2) < 0)
        goto fail;
    const char *workdir = cfg->workdir ? cfg->workdir : "/";
    f.stage = STAGE_WORKDIR; /* created when missing, as Docker does */
    if (mkdir_p(workdir, 0755) < 0 || chdir(workdir) < 0)
        goto fail;
    f.stage = STAGE_GROUPS;
    if (setgroups(u->ngroups, u->groups) < 0)
        goto fail;
    f.stage = STAGE_GID;
    if (setgid(u->gid) < 0)
        goto fail;
    f.stage = STAGE_UID;
    if (setuid(u->uid) < 0)
        goto fail;
    f.stage = STAGE_EXEC;
    environ = env; /* execvp searches the app's PATH, not init's */
    char **argv = xmalloc((cfg->nargs + 1) * sizeof *argv);
    memcpy(argv, cfg->args, cfg->nargs * sizeof *argv);
    argv[cfg->nargs] = NULL;
    execvp(argv[0], argv);
fail:
    f.err = errno;
    write_all(status, &f, sizeof f);
    _exit(127);
}

int oom_kills(void)
{
    unsigned char *text;
    if (read_file("/proc/vmstat", 1 << 20, &text) < 0)
        return 0;
    const char *p = strstr((const char *)text, "\noom_kill ");
    int n = p ? atoi(p + 10) : 0;
    free(text);
    return n;
}

static void arm(int timer, unsigned long ms)
{
    struct itimerspec it = {0};
    it.it_value.tv_sec = (time_t)(ms / 1000);
    it.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
    if (ms == 0)
        it.it_value.tv_nsec = 1; /* zero would disarm */
    timerfd_settime(timer, 0, &it, NULL);
}

static void signal_app(pid_t app, int sig)
{
    if (kill(-app, sig) < 0) /* the group; the app alone if it left its group */
        kill(app, sig);
}

int run_app(const struct config *cfg, const struct app_user *u)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    int sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    int timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    int out[2], err[2], status[2];
    if (sigfd < 0 || timer < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(status, O_CLOEXEC) < 0)
        fatal("app setup: %s", strerror(errno));
    char **env = build_env(cfg, u);

    pid_t app = fork();
    if (app < 0)
        fatal("fork: %s", strerror(errno));
    if (app == 0)
        child(cfg, u, out[1], err[1], status[1], env);
    close(out[1]);
    close(err[1]);
    close(status[1]);

    struct failure f;
    ssize_t got;
    while ((got = read(status[0], &f, sizeof f)) < 0 && errno == EINTR)
        ;
    close(status[0]);
    if (got == (ssize_t)sizeof f) {
        if (f.stage == STAGE_EXEC)
            fatal("exec %s: %s", cfg->args[0], strerror(f.err));
        if (f.stage == STAGE_WORKDIR)
            fatal("workdir %s: %s", cfg->workdir ? cfg->workdir : "/", strerror(f.err));
        fatal("%s: %s", stage_names[f.stage], strerror(f.err));
    }
    frame_text('R', "%d", (int)app);

    static struct stream streams[2];
    streams[0] = (struct stream){.fd = out[0], .type = 'O'};
    streams[1] = (struct stream){.fd = err[0], .type = 'E'};
    int app_status = 0, exited = 0, stopping = 0;
    int console = console_fd(); /* for reading commands; -1 once its input is gone */
    while (!exited) {
        struct pollfd p[5] = {
            {.fd = sigfd, .events = POLLIN},
            {.fd = console, .events = POLLIN},
            {.fd = timer, .events = POLLIN},
            {.fd = streams[0].fd, .events = POLLIN},
            {.fd = streams[1].fd, .events = POLLIN},
        };
        if (poll(p, 5, -1) < 0) {
            if (errno != EINTR)
                info("poll: %s", strerror(errno));
            continue;
        }
        if (p[0].revents) {
            struct signalfd_siginfo si;
            while (read(sigfd, &si, sizeof si) > 0)
                ;
            int st;
            pid_t pid;
            while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
                if (pid == app) {
                    app_status = st;
                    exited = 1;
                }
            }
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            unsigned char buf[256];
            ssize_t n = read(console, buf, sizeof buf);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
                info("console input closed: commands are no longer read");
                console = -1; /* poll would report it again at once, forever */
            }
            for (ssize_t i = 0; i < n && !exited; i++) {
                struct command cmd;
                if (!command_feed(buf[i], &cmd))
                    continue;
                if (cmd.type == 'T') {
                    /* Signal and deadline first: the answer is only a report, and writing it
                       may wait for the console. */
                    signal_app(app, SIGTERM);
                    if (!stopping) { /* a second stop does not extend the first one's deadline */
                        arm(timer, cmd.value);
                        info("stop: SIGTERM sent, SIGKILL in %lu ms", cmd.value);
                    } else {
                        info("stop: SIGTERM sent again, SIGKILL at the first stop's deadline");
                    }
                    stopping = 1;
                } else {
                    signal_app(app, (int)cmd.value);
                }
            }
        }
        if (p[2].revents) {
            unsigned long long expirations;
            if (read(timer, &expirations, sizeof expirations) > 0)
                kill(-1, SIGKILL); /* the grace period is over: everything but init */
        }
        for (int i = 0; i < 2; i++)
            if (streams[i].fd >= 0 && (p[3 + i].revents & (POLLIN | POLLHUP | POLLERR)))
                stream_read(&streams[i]);
    }

    /* What the app left behind is killed and reaped; then every write end of the pipes is closed,
       and reading them to the end is finite. Their last lines come before the exit report. */
    kill(-1, SIGKILL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    for (int i = 0; i < 2; i++)
        while (streams[i].fd >= 0)
            stream_read(&streams[i]);
    close(sigfd);
    close(timer);
    return WIFSIGNALED(app_status) ? 128 + WTERMSIG(app_status) : WEXITSTATUS(app_status);
}
