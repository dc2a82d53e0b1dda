// Miner family rules (YARA, compiled by YARA-X; also valid for classic YARA 4.x).
// Every rule carries meta: id, family, severity, description, references, positive, negative.

rule xmrig_cli_flags {
  meta:
    id = "miner/xmrig-cli"
    family = "xmrig"
    severity = "critical"
    description = "An xmrig-style command line: a pool URL flag together with the donate-level flag only xmrig and its forks have."
    references = "https://xmrig.com/docs/miner/command-line-options"
    positive = "./xmrig -o pool.example.net:3333 -u WALLET --donate-level 1"
    negative = "set the donate level in the settings"
  strings:
    $donate = "--donate-level"
    $url1 = " -o "
    $url2 = "--url"
  condition:
    $donate and any of ($url*)
}
