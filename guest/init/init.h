/* guest/init: PID 1 of every trc microVM. docs/guest.md is the contract with the agent. */
#ifndef TRC_INIT_H
#define TRC_INIT_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/types.h>

#define CONFIG_DEVICE "/dev/vdc"
#define CONFIG_MAGIC "TRCGUEST1\n"
#define CONFIG_MAGIC_LEN 10
#define CONFIG_MAX_DISK (16u << 20)   /* the whole image */
#define CONFIG_MAX_RECORD (8u << 20)  /* one record's value */
#define CONFIG_MAX_KEY 32
#define CONFIG_MAX_LIST 65536         /* arg and env records each */
#define CONFIG_MAX_VOLUMES 16         /* vdd .. vds */
#define CONFIG_MAX_WORKDIR 4095
#define DEFAULT_MTU 1420

#define FRAME_RS '\x1e'
#define OUTPUT_LINE_MAX 8192          /* app output lines are split at this many bytes */

/* The parsed config disk. Strings point into the disk buffer (each value's '\n' terminator is
   replaced by a NUL), so the buffer must outlive the config. A record that may appear once is
   present when its text is not NULL. */
struct config {
    char **args;
    size_t nargs;
    char **env;
    size_t nenv;
    char **volumes;
    size_t nvolumes;
    const char *workdir;   /* NULL: "/" */
    const char *user;      /* NULL: root */
    const char *hostname;  /* NULL: leave the kernel's */
    const char *ipv6_text; /* NULL: eth0 stays down */
    struct in6_addr ipv6;
    unsigned ipv6_prefix;
    const char *gateway_text;
    struct in6_addr gateway;
    const char *mtu_text;
    unsigned mtu;          /* 0: DEFAULT_MTU */
    const char *secrets;   /* NULL: no secrets file; any bytes */
    size_t secrets_len;
};

/* config.c */
/* Parses a whole config disk. On error, returns -1 with "offset N: ..." in err (never a value). */
int config_parse(unsigned char *disk, size_t len, struct config *cfg, char *err, size_t errlen);
/* Reads and parses the config disk at path; *disk must outlive cfg. Returns 0; -1 with "offset N: ..."
   in err when the disk is refused (nothing is left allocated); -2 with "PATH: reason" when it cannot
   be read. */
int config_load(const char *path, unsigned char **disk, struct config *cfg, char *err, size_t errlen);
void config_free(struct config *cfg);
/* Host-side check mode (init --check-config FILE...): prints the parsed records; used by the tests. */
int config_check_main(int nfiles, char **files);

/* tsc.c: host-side, init --tsc-khz prints the host's TSC rate (for tsc_early_khz= under TCG). */
int tsc_khz_main(void);

/* console.c */
void console_open(void);
int console_fd(void);
/* One frame, one write: RS, the type letter, a space, the payload (cut at OUTPUT_LINE_MAX), LF. */
void frame_bytes(char type, const char *data, size_t len);
/* A frame of formatted text; CR and LF in it become spaces, so it stays one line. */
void frame_text(char type, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define info(...) frame_text('I', __VA_ARGS__)
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void power_off(void) __attribute__((noreturn));

/* A command from the host (docs/guest.md, "Host to guest"). */
struct command {
    char type;           /* 'T' or 'S'; 0 when none */
    unsigned long value; /* grace in ms, or the signal number */
};
/* Feeds console input; returns 1 and fills cmd when a complete, valid command line ended. */
int command_feed(unsigned char byte, struct command *cmd);

/* modules.c */
void load_modules(const char *list);

/* mounts.c */
void mount_early(void);
int wait_for_path(const char *path, int timeout_ms);
void switch_root(void);
void mount_runtime(void);
/* Writes /run/secrets/platform.env: root:root 0400, or root:gid 0440 when group_readable. */
void write_secrets(const struct config *cfg, gid_t gid, int group_readable);
void mount_volumes(const struct config *cfg);
void shutdown_mounts(const struct config *cfg);

/* net.c */
void net_setup(const struct config *cfg);

/* user.c */
#define USER_MAX_GROUPS 64
struct app_user {
    uid_t uid;
    gid_t gid;
    gid_t groups[USER_MAX_GROUPS];
    size_t ngroups;
    char home[4096];
};
/* Resolves an OCI user spec against the image's /etc/passwd and /etc/group (spec NULL: root). */
int user_resolve(const char *spec, struct app_user *u, char *err, size_t errlen);

/* app.c */
/* Runs the app to its end; returns its exit code (or 128 + signal). Never returns on exec failure. */
int run_app(const struct config *cfg, const struct app_user *u);
int oom_kills(void);

/* util.c */
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
int write_all(int fd, const void *buf, size_t len);
/* Reads a whole file up to max bytes; returns its length or -1 (errno set; EFBIG when larger). */
ssize_t read_file(const char *path, size_t max, unsigned char **out);
int utf8_valid(const unsigned char *s, size_t len);
int mkdir_p(const char *path, mode_t mode);
/* Parses 1..maxdigits decimal digits without a leading zero into *out; 0 on success. */
int parse_decimal(const char *s, size_t len, size_t maxdigits, unsigned long long *out);
int parse_ipv6(const char *s, size_t len, struct in6_addr *out);

#endif
