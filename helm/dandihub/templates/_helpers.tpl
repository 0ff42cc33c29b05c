{{/*
Names. Zero to JupyterHub names its objects by component (hub, proxy-public, ...); the
objects here that the hub's values refer to have fixed names too (dandihub-settings,
dandihub-secrets), so one release per namespace.
*/}}
{{- define "dandihub.labels" -}}
app.kubernetes.io/name: dandihub
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "dandihub.secretsMount" -}}/usr/local/etc/dandihub/secrets{{- end -}}

{{/* A Secret key for an archive's secret: "DANDI staging", client_secret -> dandi-staging-client-secret */}}
{{- define "dandihub.archiveSecretKey" -}}
{{- printf "%s-%s" (regexReplaceAll "[^a-z0-9]+" (lower .name) "-" | trimAll "-") (.what | replace "_" "-") -}}
{{- end -}}

{{- define "dandihub.daskGatewayName" -}}
{{- $gw := index .Values "dask-gateway" -}}
{{- $gw.fullnameOverride | default (printf "%s-dask-gateway" .Release.Name) -}}
{{- end -}}

{{- define "dandihub.daskGatewayEnabled" -}}
{{- if (index .Values "dask-gateway").enabled }}true{{ end -}}
{{- end -}}

{{- define "dandihub.sharedDataClaim" -}}
{{- with .Values.dandihub.sharedData -}}
{{- if .enabled -}}{{ .existingClaim | default (printf "%s-shared-data" $.Release.Name) }}{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The Settings (dandihub.config.Settings) of this deployment, as JSON: the operator's
dandihub: values (without the chart's own keys) plus what only the chart knows.
*/}}
{{- define "dandihub.settings" -}}
{{- $values := .Values.dandihub -}}
{{- $s := omit (deepCopy $values) "secrets" "sharedData" "retentionReport" -}}
{{- $mount := include "dandihub.secretsMount" . -}}
{{- $_ := set $s "spawner" "kubernetes" -}}
{{- /* Zero to JupyterHub mounts the hub's database volume here */ -}}
{{- $_ := set $s "data_dir" "/srv/jupyterhub" -}}
{{- $_ := set $s "base_url" (.Values.jupyterhub.hub.baseUrl | default "/") -}}
{{- /* The proxy runs in its own pod: it reaches the usage page through the hub Service */ -}}
{{- $_ := set $s "usage_port" 10101 -}}
{{- $_ := set $s "usage_url" "http://hub:10101" -}}
{{- $_ := set $s "homes_root" "" -}}
{{- $_ := set $s "shared_data_claim" (include "dandihub.sharedDataClaim" .) -}}
{{- if include "dandihub.daskGatewayEnabled" . -}}
{{- $gw := include "dandihub.daskGatewayName" . -}}
{{- $prefix := (index .Values "dask-gateway").gateway.prefix -}}
{{- $_ := set $s "dask_gateway_address" (printf "http://traefik-%s%s" $gw $prefix) -}}
{{- $_ := set $s "dask_gateway_proxy_address" (printf "gateway://traefik-%s:80" $gw) -}}
{{- $_ := set $s "dask_gateway_public_address" (printf "%s/" (trimSuffix "/" $prefix)) -}}
{{- else -}}
{{- $_ := set $s "dask_gateway_address" "" -}}
{{- $_ := set $s "dask_gateway_proxy_address" "" -}}
{{- $_ := set $s "dask_gateway_public_address" "" -}}
{{- end -}}
{{- /* Secrets reach the hub as files of the dandihub-secrets volume */ -}}
{{- $archives := list -}}
{{- range $values.archives -}}
{{- $a := deepCopy . -}}
{{- if eq $values.authenticator "dandi-oauth" -}}
{{- $_ := set $a "client_secret_file" (printf "%s/%s" $mount (include "dandihub.archiveSecretKey" (dict "name" .name "what" "client_secret"))) -}}
{{- end -}}
{{- if eq $values.authenticator "github" -}}
{{- $_ := set $a "service_token_file" (printf "%s/%s" $mount (include "dandihub.archiveSecretKey" (dict "name" .name "what" "service_token"))) -}}
{{- end -}}
{{- $archives = append $archives $a -}}
{{- end -}}
{{- $_ := set $s "archives" $archives -}}
{{- if eq $values.authenticator "github" -}}
{{- $_ := set $s "github_client_secret_file" (printf "%s/github-client-secret" $mount) -}}
{{- end -}}
{{- toPrettyJson $s -}}
{{- end -}}

{{/*
What Helm cannot check with a schema: the Zero to JupyterHub values this chart relies on
(lists are replaced, not merged, when a deployer sets their own).
*/}}
{{- define "dandihub.checks" -}}
{{- $hub := .Values.jupyterhub.hub -}}
{{- $volumes := list -}}
{{- range $hub.extraVolumes }}{{ $volumes = append $volumes .name }}{{ end -}}
{{- $mounts := list -}}
{{- range $hub.extraVolumeMounts }}{{ $mounts = append $mounts .name }}{{ end -}}
{{- range list "dandihub-settings" "dandihub-secrets" -}}
{{- if not (and (has . $volumes) (has . $mounts)) -}}
{{- fail (printf "jupyterhub.hub.extraVolumes and extraVolumeMounts must keep the volume %q (Helm replaces lists: list the chart's entries from values.yaml before your own)" .) -}}
{{- end -}}
{{- end -}}
{{- if not (hasKey ($hub.extraConfig | default dict) "00-dandihub") -}}
{{- fail "jupyterhub.hub.extraConfig.00-dandihub is the line that loads the DANDI Hub settings; keep it" -}}
{{- end -}}
{{- if .Values.jupyterhub.cull.enabled -}}
{{- fail "jupyterhub.cull.enabled must stay false: the hub runs its own culler (dandihub.cull_*), which counts running work as activity" -}}
{{- end -}}
{{- if .Values.jupyterhub.singleuser.cloudMetadata.blockWithIptables -}}
{{- fail "jupyterhub.singleuser.cloudMetadata.blockWithIptables adds a privileged container to every user pod; the singleuser NetworkPolicy (egressAllowRules.cloudMetadataServer: false) blocks the metadata server instead" -}}
{{- end -}}
{{- if ne (.Values.jupyterhub.singleuser.storage.type | toString) "none" -}}
{{- fail "jupyterhub.singleuser.storage.type must be none: the DANDI spawner mounts homes itself (dandihub.home_*)" -}}
{{- end -}}
{{- if include "dandihub.daskGatewayEnabled" . -}}
{{- $service := index ($hub.services | default dict) "dask-gateway" | default dict -}}
{{- $want := printf "http://traefik-%s" (include "dandihub.daskGatewayName" .) -}}
{{- if ne ($service.url | default "") $want -}}
{{- fail (printf "jupyterhub.hub.services.dask-gateway.url must be %s, the gateway's traefik Service (set dask-gateway.fullnameOverride to change the name)" $want) -}}
{{- end -}}
{{- else -}}
{{- with index ($hub.services | default dict) "dask-gateway" -}}
{{- if .url -}}
{{- fail "dask-gateway.enabled is false: set jupyterhub.hub.services.dask-gateway.url to \"\" (no route to a gateway that does not exist)" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.dandihub.retentionReport.enabled .Values.dandihub.retentionReport.delete (not .Values.dandihub.home_claim) -}}
{{- fail "dandihub.retentionReport.delete needs dandihub.home_claim: the job cannot mount every user's own PVC" -}}
{{- end -}}
{{- if and .Values.dandihub.retentionReport.enabled (not (hasKey ($hub.services | default dict) "retention-report")) -}}
{{- fail "dandihub.retentionReport needs jupyterhub.hub.services.retention-report (its API token) and hub.loadRoles.retention-report" -}}
{{- end -}}
{{- end -}}
