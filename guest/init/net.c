/* lo and eth0 by rtnetlink: link up, MTU, one IPv6 address without DAD, a default route. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "init.h"

struct request {
    struct nlmsghdr nh;
    char body[256];
};

static void add_attr(struct request *r, unsigned short type, const void *data, size_t len)
{
    struct rtattr *a = (struct rtattr *)((char *)&r->nh + NLMSG_ALIGN(r->nh.nlmsg_len));
    a->rta_type = type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    memcpy(RTA_DATA(a), data, len);
    r->nh.nlmsg_len = NLMSG_ALIGN(r->nh.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* Sends one request and waits for its acknowledgement; returns 0 or sets errno. */
static int talk(int sock, struct request *r)
{
    static unsigned seq;
    r->nh.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    r->nh.nlmsg_seq = ++seq;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    if (sendto(sock, r, r->nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
        return -1;
    char buf[4096];
    for (;;) {
        ssize_t n = recv(sock, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != seq || h->nlmsg_type != NLMSG_ERROR)
                continue;
            struct nlmsgerr *e = NLMSG_DATA(h);
            if (e->error == 0)
                return 0;
            errno = -e->error;
            return -1;
        }
    }
}

static int link_set(int sock, int ifindex, unsigned mtu)
{
    struct request r = {0};
    r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    r.nh.nlmsg_type = RTM_NEWLINK;
    struct ifinfomsg *ifi = NLMSG_DATA(&r.nh);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = ifindex;
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP;
    if (mtu)
        add_attr(&r, IFLA_MTU, &mtu, sizeof mtu);
    return talk(sock, &r);
}

static int addr_add(int sock, int ifindex, const struct in6_addr *addr, unsigned prefix)
{
    struct request r = {0};
    r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
    r.nh.nlmsg_type = RTM_NEWADDR;
    r.nh.nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
    struct ifaddrmsg *ifa = NLMSG_DATA(&r.nh);
    ifa->ifa_family = AF_INET6;
    ifa->ifa_prefixlen = (unsigned char)prefix;
    ifa->ifa_flags = IFA_F_NODAD; /* usable at once: nothing else on the tap claims it */
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = (unsigned)ifindex;
    unsigned flags = IFA_F_NODAD;
    add_attr(&r, IFA_LOCAL, addr, sizeof *addr);
    add_attr(&r, IFA_ADDRESS, addr, sizeof *addr);
    add_attr(&r, IFA_FLAGS, &flags, sizeof flags);
    return talk(sock, &r);
}

static int route_add_default(int sock, int ifindex, const struct in6_addr *gateway)
{
    struct request r = {0};
    r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
    r.nh.nlmsg_type = RTM_NEWROUTE;
    r.nh.nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
    struct rtmsg *rt = NLMSG_DATA(&r.nh);
    rt->rtm_family = AF_INET6;
    rt->rtm_dst_len = 0;
    rt->rtm_table = RT_TABLE_MAIN;
    rt->rtm_protocol = RTPROT_BOOT;
    rt->rtm_scope = RT_SCOPE_UNIVERSE;
    rt->rtm_type = RTN_UNICAST;
    rt->rtm_flags = RTNH_F_ONLINK; /* the gateway need not be inside the address's prefix */
    unsigned oif = (unsigned)ifindex;
    add_attr(&r, RTA_GATEWAY, gateway, sizeof *gateway);
    add_attr(&r, RTA_OIF, &oif, sizeof oif);
    return talk(sock, &r);
}

static void sysctl_write(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write_all(fd, value, strlen(value)) < 0)
        info("%s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
}

void net_setup(const struct config *cfg)
{
    int sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (sock < 0)
        fatal("netlink socket: %s", strerror(errno));
    if (link_set(sock, 1, 0) < 0) /* lo is always index 1 */
        fatal("lo up: %s", strerror(errno));
    if (!cfg->ipv6_text) {
        close(sock);
        return;
    }

    int eth0 = 0;
    for (int waited = 0; (eth0 = (int)if_nametoindex("eth0")) == 0 && waited < 2000; waited += 10)
        usleep(10000);
    if (eth0 == 0)
        fatal("no eth0 (the config has an ipv6 address)");
    /* The address and route are static: no router advertisements, no SLAAC addresses. */
    sysctl_write("/proc/sys/net/ipv6/conf/eth0/accept_ra", "0");
    sysctl_write("/proc/sys/net/ipv6/conf/eth0/autoconf", "0");
    if (link_set(sock, eth0, cfg->mtu ? cfg->mtu : DEFAULT_MTU) < 0)
        fatal("eth0 up: %s", strerror(errno));
    if (addr_add(sock, eth0, &cfg->ipv6, cfg->ipv6_prefix) < 0)
        fatal("eth0 address: %s", strerror(errno));
    if (cfg->gateway_text && route_add_default(sock, eth0, &cfg->gateway) < 0)
        fatal("default route: %s", strerror(errno));
    close(sock);
}
