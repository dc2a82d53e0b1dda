//! Charts built in code, shared by the Helm tests and the Helm benchmark: a
//! `helm create`-style chart, a parent with a sub-chart, and a chart in the style of the
//! big public collections (a `common` library chart, aliased sub-charts).

/// A chart in the style of `helm create`: helpers with `include`, `toYaml | nindent`,
/// a checksum of an included template, kind ordering, `--set` and `--set-string`.
pub const HELPERS_CHART: &[(&str, &str)] = &[
    (
        "Chart.yaml",
        r##"apiVersion: v2
name: c1
version: 0.1.0
appVersion: "1.2.3"
"##,
    ),
    (
        "values.yaml",
        r##"big: 1000000
f: 1.5
s: "yes"
list: [a, {b: "c d", e: ["x: y", "", "true"]}]
multi: |
  line one
  line two
"##,
    ),
    (
        "templates/caps.yaml",
        r##"kv: {{ .Capabilities.KubeVersion.Version }} {{ .Capabilities.KubeVersion.Major }} {{ .Capabilities.KubeVersion.Minor }} {{ .Capabilities.KubeVersion.GitVersion }}
has: {{ .Capabilities.APIVersions.Has "apps/v1" }} {{ .Capabilities.APIVersions.Has "batch/v1beta1" }} {{ len .Capabilities.APIVersions }}
rel: {{ .Release.Name }} {{ .Release.Namespace }} {{ .Release.Service }} {{ .Release.IsInstall }} {{ .Release.Revision }}
chart: {{ .Chart.Name }} {{ .Chart.Version }} {{ .Chart.AppVersion }} {{ .Chart.APIVersion }}
tmpl: {{ .Template.Name }} {{ .Template.BasePath }}
nums: {{ .Values.big }} {{ .Values.f }} {{ .Values.s }} {{ .Values.missing }} {{ .Values.x.y }}
y: {{ toYaml .Values | nindent 2 }}
"##,
    ),
    (
        "templates/z-deploy.yaml",
        r##"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "c1.fullname" . }}
  labels: {{- include "c1.labels" . | nindent 4 }}
  annotations:
    checksum: {{ include "c1.labels" . | sha256sum }}
spec:
  replicas: {{ .Values.replicas | default 2 }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ printf "%s-svc" .Release.Name | trunc 63 | trimSuffix "-" }}
"##,
    ),
    (
        "templates/_helpers.tpl",
        r##"{{- define "c1.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- define "c1.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.extraLabels }}
{{ toYaml . }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
"##,
    ),
];

/// A parent and a sub-chart: `global`, sub-chart values, `tpl`, `range` over a map,
/// `with`/`else`, `.Files.Get`/`Glob`/`AsConfig`, `lookup`, Capabilities, and many Sprig
/// functions (lists, dicts, printf verbs, math, semver, regex, JSON, base64).
pub const SUBCHART_CHART: &[(&str, &str)] = &[
    (
        "Chart.yaml",
        r##"apiVersion: v2
name: c2
version: 1.0.0
description: parent
"##,
    ),
    (
        "values.yaml",
        r##"global:
  registry: reg.example.com
ports:
  http: 80
  metrics: 9090
msg: "hello {{ .Release.Name }} in {{ .Release.Namespace }}"
enabled: true
sub:
  replicas: 3
"##,
    ),
    (
        "templates/cm.yaml",
        r##"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cm
data:
  msg: {{ tpl .Values.msg . | quote }}
  {{- range $name, $port := .Values.ports }}
  port-{{ $name }}: {{ $port | quote }}
  {{- end }}
  {{- with .Values.nothing }}
  never: {{ . }}
  {{- else }}
  fallback: "yes"
  {{- end }}
  a: {{ .Files.Get "files/a.conf" | trim | quote }}
  {{- (.Files.Glob "files/*.conf").AsConfig | nindent 2 }}
  lookup: {{ lookup "v1" "Secret" "default" "x" | toJson | quote }}
  ingress: {{ ternary "networking.k8s.io/v1" "extensions/v1beta1" (.Capabilities.APIVersions.Has "networking.k8s.io/v1") }}
  list: {{ list 1 "two" 3.5 | toJson | squote }}
  dict: {{ dict "b" 2 "a" (list "x") | toYaml | b64enc }}
  joined: {{ join "," (list "a" "b" "c") }}
  keys: {{ keys .Values.ports | sortAlpha | join "," }}
  printf: {{ printf "%05.1f|%-6s|%x|%v" 3.14159 "ab" 255 (list 1 2) | quote }}
  n: {{ add 1 2 | mul 3 }} {{ sub 10 3 }} {{ div 7 2 }} {{ mod 7 2 }} {{ int "42" }}
  empty: {{ empty "" }} {{ empty (list) }} {{ coalesce "" nil "z" }}
  regex: {{ regexReplaceAll "[0-9]+" "a1b22c" "#" }}
  semver: {{ semverCompare ">=1.19-0" .Capabilities.KubeVersion.GitVersion }} {{ semverCompare "<1.20" .Capabilities.KubeVersion.Version }} {{ semverCompare "^1.30" "1.35.0" }} {{ semverCompare "~1.35.0" "v1.35.2" }}
  misc: {{ substr 1 3 "abcdef" }} {{ base "/a/b.txt" }} {{ ext "x.tar.gz" }} {{ sha1sum "x" }} {{ snakecase "fooBarBaz" }} {{ dig "a" "b" "def" (dict "a" (dict "b" "found")) }}
  pretty: {{ toPrettyJson (dict "b" (list 1 2) "a" "x") | b64enc }}
"##,
    ),
    (
        "files/a.conf",
        r##"a = 1
"##,
    ),
    (
        "files/b.conf",
        r##"b = 2
"##,
    ),
    (
        "charts/sub/Chart.yaml",
        r##"apiVersion: v2
name: sub
version: 0.2.0
"##,
    ),
    (
        "charts/sub/values.yaml",
        r##"replicas: 1
image: app
"##,
    ),
    (
        "charts/sub/templates/dep.yaml",
        r##"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-{{ .Chart.Name }}
spec:
  replicas: {{ .Values.replicas }}
  template:
    spec:
      containers:
      - name: app
        image: {{ .Values.global.registry }}/{{ .Values.image }}
"##,
    ),
];

/// A chart in the style of the big public collections: a `common` library chart of
/// helpers (names, labels built with `set`/`merge`, images with a global registry,
/// `tplvalues.render`), one sub-chart used twice (under its name, disabled by its
/// condition, and under an alias with `import-values`), a sub-chart behind a tag, one no
/// dependency lists, a helper both parent and sub-chart define (the parent's wins) and
/// an empty redefinition (which replaces nothing).
pub const DEPS_CHART: &[(&str, &str)] = &[
    (
        "Chart.yaml",
        r##"apiVersion: v2
name: shop
version: 2.1.0
appVersion: "5.4"
dependencies:
  - name: common
    version: 2.x.x
    repository: oci://registry.example.com/charts
    tags: [shop-common]
  - name: redis
    version: "~18.1.0"
    repository: https://charts.example.com
    condition: redis.enabled
  - name: redis
    version: ">=18.0.0"
    repository: https://charts.example.com
    alias: cache
    condition: cache.enabled,global.cacheEnabled
    import-values:
      - conn
      - child: defaults
        parent: cacheDefaults
  - name: metrics
    version: 0.3.1
    repository: https://charts.example.com
    tags: [monitoring]
"##,
    ),
    (
        "values.yaml",
        r##"global:
  imageRegistry: ""
commonLabels:
  team: payments
  tier: "{{ .Values.tier }}"
tier: backend
image:
  registry: docker.io
  repository: acme/shop
  tag: 5.4.1
redis:
  enabled: false
cache:
  enabled: true
  port: 6380
tags:
  monitoring: false
cacheDefaults:
  ttl: 30
dashboards:
  title: Shop
"##,
    ),
    (
        "templates/_helpers.tpl",
        r##"{{- define "shop.banner" -}}from shop{{- end -}}
"##,
    ),
    (
        "templates/_a.tpl",
        r##"{{- define "shop.note" }}{{ end -}}
"##,
    ),
    (
        "templates/_b.tpl",
        r##"{{- define "shop.note" -}}note from _b{{- end -}}
"##,
    ),
    (
        "templates/deployment.yaml",
        r##"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "common.names.fullname" . }}
  namespace: {{ include "common.names.namespace" . | quote }}
  labels: {{- include "common.labels.standard" (dict "customLabels" .Values.commonLabels "context" $) | nindent 4 }}
  annotations:
    banner: {{ include "shop.banner" . | quote }}
    note: {{ include "shop.note" . | quote }}
    subcharts: {{ keys .Values | sortAlpha | join "," | quote }}
spec:
  selector:
    matchLabels: {{- include "common.labels.matchLabels" (dict "customLabels" .Values.commonLabels "context" $) | nindent 6 }}
  template:
    spec:
      containers:
        - name: shop
          image: {{ include "common.images.image" (dict "imageRoot" .Values.image "global" .Values.global) }}
          env:
            - name: CACHE_PORT
              value: {{ .Values.cache.port | quote }}
            - name: CACHE_ARCH
              value: {{ .Values.cache.architecture | quote }}
            - name: REDIS_PORT_IMPORTED
              value: {{ .Values.redisPort | quote }}
            - name: REDIS_HOST_IMPORTED
              value: {{ .Values.redisHost | quote }}
            - name: CACHE_TTL
              value: {{ .Values.cacheDefaults.ttl | quote }}
            - name: CACHE_MAXMEMORY
              value: {{ .Values.cacheDefaults.maxmemory | quote }}
"##,
    ),
    (
        "charts/common/Chart.yaml",
        r##"apiVersion: v2
name: common
version: 2.13.0
type: library
"##,
    ),
    (
        "charts/common/values.yaml",
        r##"exampleValue: common-chart
"##,
    ),
    (
        "charts/common/templates/_names.tpl",
        r##"{{- define "common.names.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "common.names.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "common.names.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "common.names.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}
"##,
    ),
    (
        "charts/common/templates/_labels.tpl",
        r##"{{- define "common.labels.standard" -}}
{{- if and (hasKey . "customLabels") (hasKey . "context") -}}
{{- $default := dict "app.kubernetes.io/name" (include "common.names.name" .context) "helm.sh/chart" (include "common.names.chart" .context) "app.kubernetes.io/instance" .context.Release.Name "app.kubernetes.io/managed-by" .context.Release.Service -}}
{{- with .context.Chart.AppVersion -}}
{{- $_ := set $default "app.kubernetes.io/version" . -}}
{{- end -}}
{{ template "common.tplvalues.merge" (dict "values" (list .customLabels $default) "context" .context) }}
{{- else -}}
app.kubernetes.io/name: {{ include "common.names.name" . }}
helm.sh/chart: {{ include "common.names.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "common.labels.matchLabels" -}}
{{- if and (hasKey . "customLabels") (hasKey . "context") -}}
{{ merge (pick (include "common.tplvalues.render" (dict "value" .customLabels "context" .context) | fromYaml) "app.kubernetes.io/name" "app.kubernetes.io/instance") (dict "app.kubernetes.io/name" (include "common.names.name" .context) "app.kubernetes.io/instance" .context.Release.Name ) | toYaml }}
{{- else -}}
app.kubernetes.io/name: {{ include "common.names.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- end -}}
"##,
    ),
    (
        "charts/common/templates/_images.tpl",
        r##"{{- define "common.images.image" -}}
{{- $registryName := default .imageRoot.registry ((.global).imageRegistry) -}}
{{- $repositoryName := .imageRoot.repository -}}
{{- $separator := ":" -}}
{{- $termination := .imageRoot.tag | toString -}}
{{- if .imageRoot.digest }}
    {{- $separator = "@" -}}
    {{- $termination = .imageRoot.digest | toString -}}
{{- end -}}
{{- if $registryName }}
    {{- printf "%s/%s%s%s" $registryName $repositoryName $separator $termination -}}
{{- else -}}
    {{- printf "%s%s%s"  $repositoryName $separator $termination -}}
{{- end -}}
{{- end -}}
"##,
    ),
    (
        "charts/common/templates/_tplvalues.tpl",
        r##"{{- define "common.tplvalues.render" -}}
{{- $value := typeIs "string" .value | ternary .value (.value | toYaml) }}
{{- if contains "{{" (toJson .value) }}
  {{- if .scope }}
      {{- tpl (cat "{{- with $.RelativeScope -}}" $value "{{- end }}") (merge (dict "RelativeScope" .scope) .context) }}
  {{- else }}
    {{- tpl $value .context }}
  {{- end }}
{{- else }}
    {{- $value }}
{{- end }}
{{- end -}}

{{- define "common.tplvalues.merge" -}}
{{- $dst := dict -}}
{{- range .values -}}
{{- $dst = include "common.tplvalues.render" (dict "value" . "context" $.context "scope" $.scope) | fromYaml | merge $dst -}}
{{- end -}}
{{ $dst | toYaml }}
{{- end -}}
"##,
    ),
    (
        "charts/common/templates/never-rendered.yaml",
        r##"apiVersion: v1
kind: ConfigMap
metadata:
  name: library-charts-render-no-manifests
"##,
    ),
    (
        "charts/redis/Chart.yaml",
        r##"apiVersion: v2
name: redis
version: 18.1.2
"##,
    ),
    (
        "charts/redis/values.yaml",
        r##"port: 6379
architecture: standalone
exports:
  conn:
    redisPort: 6379
    redisHost: redis-master
defaults:
  ttl: 60
  maxmemory: 64mb
"##,
    ),
    (
        "charts/redis/templates/_helpers.tpl",
        r##"{{- define "shop.banner" -}}from redis{{- end -}}
"##,
    ),
    (
        "charts/redis/templates/svc.yaml",
        r##"apiVersion: v1
kind: Service
metadata:
  name: {{ include "common.names.fullname" . }}
  labels: {{- include "common.labels.standard" . | nindent 4 }}
  annotations:
    banner: {{ include "shop.banner" . | quote }}
    chart: {{ .Chart.Name }}
    template: {{ .Template.Name }}
    global: {{ .Values.global | toJson | quote }}
spec:
  ports:
    - port: {{ .Values.port }}
"##,
    ),
    (
        "charts/metrics/Chart.yaml",
        r##"apiVersion: v2
name: metrics
version: 0.3.1
"##,
    ),
    (
        "charts/metrics/templates/cm.yaml",
        r##"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-metrics
data:
  scrape: "30s"
"##,
    ),
    (
        "charts/dashboards/Chart.yaml",
        r##"apiVersion: v2
name: dashboards
version: 1.0.0
"##,
    ),
    (
        "charts/dashboards/values.yaml",
        r##"title: Default
refresh: 1m
"##,
    ),
    (
        "charts/dashboards/templates/cm.yaml",
        r##"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-dashboards
data:
  title: {{ .Values.title | quote }}
  refresh: {{ .Values.refresh | quote }}
"##,
    ),
];
