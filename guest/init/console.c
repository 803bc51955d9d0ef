/* The console: ttyS0 in raw mode, carrying frames both ways (docs/guest.md, "Console protocol"). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <termios.h>
#include <unistd.h>

#include "init.h"

static int console = -1;

int console_fd(void) { return console; }

/* The kernel gives PID 1 /dev/console as fds 0-2 only when the initramfs has that node; ours
   has none (it is built without root), so init opens the console itself once devtmpfs is up. */
void console_open(void)
{
    int fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return; /* nothing to report to; the fatal path still powers off */
    if (fd <= 2) { /* fds 0-2 were closed: keep the console out of their way */
        int high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        close(fd);
        if (high < 0)
            return;
        fd = high;
    }
    struct termios t;
    if (tcgetattr(fd, &t) == 0) {
        /* Raw: no echo, no line editing, no signals from bytes, no output processing (frames stay
           exactly the bytes written), 8 bits. */
        t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXOFF);
        t.c_oflag &= ~(tcflag_t)OPOST;
        t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
        t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
        t.c_cflag |= CS8;
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
        tcsetattr(fd, TCSANOW, &t);
    }
    console = fd;
    /* fds 0-2 of init itself: stdin /dev/null, stdout/stderr the console (nothing should print
       there, but a library that does must not hit a closed fd or a random file). */
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        if (null != 0)
            dup2(null, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (null > 2)
            close(null);
    }
}

void frame_bytes(char type, const char *payload, size_t len)
{
    static char buf[OUTPUT_LINE_MAX + 16];
    if (console < 0)
        return;
    if (len > OUTPUT_LINE_MAX)
        len = OUTPUT_LINE_MAX;
    buf[0] = FRAME_RS;
    buf[1] = type;
    buf[2] = ' ';
    memcpy(buf + 3, payload, len);
    buf[3 + len] = '\n';
    write_all(console, buf, len + 4);
}

static void vframe(char type, const char *fmt, va_list ap)
{
    char text[1024];
    int n = vsnprintf(text, sizeof text, fmt, ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof text ? (size_t)n : sizeof text - 1;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\n' || text[i] == '\r')
            text[i] = ' ';
    frame_bytes(type, text, len);
}

void frame_text(char type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vframe(type, fmt, ap);
    va_end(ap);
}

void power_off(void)
{
    sync();
    if (console >= 0)
        tcdrain(console); /* the last frame must leave the UART before the machine stops */
    reboot(RB_POWER_OFF);
    /* Unreachable unless reboot failed; PID 1 must not exit (that panics the kernel). */
    for (;;)
        pause();
}

void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vframe('F', fmt, ap);
    va_end(ap);
    if (getpid() != 1)
        exit(1);
    power_off();
}

/* Command lines: RS starts a frame (and discards any partial one), LF or CR ends it. Anything not
   inside a frame is ignored, as are frames longer than the buffer or not understood. */
int command_feed(unsigned char byte, struct command *cmd)
{
    static char line[32];
    static size_t len;
    static int in_frame;

    if (byte == (unsigned char)FRAME_RS) {
        in_frame = 1;
        len = 0;
        return 0;
    }
    if (!in_frame)
        return 0;
    if (byte != '\n' && byte != '\r') {
        if (len < sizeof line)
            line[len++] = (char)byte;
        else
            in_frame = 0;
        return 0;
    }
    in_frame = 0;
    unsigned long long value;
    if (len < 3 || line[1] != ' ' || parse_decimal(line + 2, len - 2, 10, &value)) {
        info("ignored a malformed command");
        return 0;
    }
    if (line[0] == 'T' && value <= 0x7fffffff) {
        cmd->type = 'T';
    } else if (line[0] == 'S' && value >= 1 && value <= 64) {
        cmd->type = 'S';
    } else {
        info("ignored a malformed command");
        return 0;
    }
    cmd->value = (unsigned long)value;
    return 1;
}
