{{/*
Shared pieces. Every part is named <fullname>-<part> and selected by exactly two labels,
app.kubernetes.io/name (that name) and app.kubernetes.io/part-of: kubeward: the labels
`kubeward admission manifests` uses, so the admission objects of the chart and of the CLI are the same, and the
webhook's objectSelector (part-of NotIn kubeward) leaves every object of this chart alone.
*/}}

{{- define "kubeward.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The usual fullname: the release name when it already holds the chart name (`helm install kubeward`). */}}
{{- define "kubeward.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The name of one part: (dict "root" $ "part" "monitor") */}}
{{- define "kubeward.part" -}}
{{- printf "%s-%s" (include "kubeward.fullname" .root) .part -}}
{{- end -}}

{{- define "kubeward.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubeward.part" . }}
app.kubernetes.io/part-of: kubeward
{{- end -}}

{{- define "kubeward.labels" -}}
{{ include "kubeward.selectorLabels" . }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .part }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Metadata of a namespaced object of one part: (dict "root" $ "part" "monitor" "name" "x" "namespace" "y") */}}
{{- define "kubeward.metadata" -}}
name: {{ default (include "kubeward.part" .) .name }}
{{- if not .clusterScoped }}
namespace: {{ default .root.Release.Namespace .namespace }}
{{- end }}
labels:
  {{- include "kubeward.labels" . | nindent 2 }}
{{- end -}}

{{/* The image: a digest pins it (pulled IfNotPresent); a tag is pulled Always, so a moved tag is noticed. */}}
{{- define "kubeward.image" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{- define "kubeward.pullPolicy" -}}
{{- if .Values.image.pullPolicy -}}
{{- .Values.image.pullPolicy -}}
{{- else if .Values.image.digest -}}
IfNotPresent
{{- else -}}
Always
{{- end -}}
{{- end -}}

{{/* Pod Security "restricted" for a pod that runs as kubeward's image user. */}}
{{- define "kubeward.podSecurityContext" -}}
runAsNonRoot: true
seccompProfile:
  type: RuntimeDefault
fsGroup: {{ .Values.securityContext.runAsUser }}
{{- end -}}

{{- define "kubeward.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
The API credentials of a part that talks to the apiserver: automountServiceAccountToken stays false and this
projected volume is mounted where client libraries look (a bound token that expires, the cluster CA, the
namespace), so only the container that needs it has a token.
*/}}
{{- define "kubeward.apiTokenVolume" -}}
- name: api-token
  projected:
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: 3600
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
      - downwardAPI:
          items:
            - path: namespace
              fieldRef:
                fieldPath: metadata.namespace
{{- end -}}

{{- define "kubeward.apiTokenMount" -}}
- name: api-token
  mountPath: /var/run/secrets/kubernetes.io/serviceaccount
  readOnly: true
{{- end -}}

{{/*
What `kubeward scan --cluster` (and the monitor, which runs the same controls) reads: SCAN_TYPES of
src/kubeward/sources/cluster.py; tests/e2e/test_helm_chart.py keeps the two equal. Secrets only when asked
(readSecrets): reading every Secret of the cluster is what the Secret controls need and what KW-R005 warns of.
Call with (dict "verbs" (list ...) "readSecrets" bool).
*/}}
{{- define "kubeward.readRules" -}}
- apiGroups: [""]
  resources: [namespaces, nodes, pods, replicationcontrollers, services, serviceaccounts, configmaps{{ if .readSecrets }}, secrets{{ end }}]
  verbs: {{ toJson .verbs }}
- apiGroups: [apps]
  resources: [deployments, replicasets, statefulsets, daemonsets]
  verbs: {{ toJson .verbs }}
- apiGroups: [batch]
  resources: [jobs, cronjobs]
  verbs: {{ toJson .verbs }}
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies, ingresses]
  verbs: {{ toJson .verbs }}
- apiGroups: [policy.networking.k8s.io]
  resources: [adminnetworkpolicies, baselineadminnetworkpolicies]
  verbs: {{ toJson .verbs }}
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, clusterroles, rolebindings, clusterrolebindings]
  verbs: {{ toJson .verbs }}
{{- end -}}

{{/* Egress a part that talks to the apiserver needs: DNS and the API (443 on the Service, 6443 on the endpoints). */}}
{{- define "kubeward.apiEgress" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
- ports:
    - port: 443
      protocol: TCP
    - port: 6443
      protocol: TCP
{{- end -}}

{{- define "kubeward.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "kubeward.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
