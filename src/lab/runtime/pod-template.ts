// The DaemonSet's pod template, read from deploy/base (never copied by hand), and what the
// kubelet would make of it on one lab node: the container runtime's view of every
// container (image, command, env with the downward-API values filled in, capabilities,
// read-only root, mounts) and of the pod (host network, host PID, grace period). Pure:
// `podman.ts` turns it into podman commands, a test holds both against the manifest.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

/** The parts of a pod template the lab runs; anything else in the manifest is ignored on purpose. */
export interface TemplateContainer {
  readonly name: string;
  readonly image: string;
  readonly command?: readonly string[];
  readonly args: readonly string[];
  readonly env: readonly TemplateEnv[];
  readonly capAdd: readonly string[];
  readonly capDrop: readonly string[];
  readonly readOnlyRootFilesystem: boolean;
  /** securityContext.privileged: every capability, and /proc/sys and /sys writable. */
  readonly privileged: boolean;
  readonly mounts: readonly TemplateMount[];
  /** lifecycle.preStop.exec.command */
  readonly preStop?: readonly string[];
  /** resources.limits.memory, as written ("512Mi"). */
  readonly memoryLimit?: string;
}

export type TemplateEnv =
  | { readonly name: string; readonly value: string }
  | { readonly name: string; readonly fieldPath: string };

export interface TemplateMount {
  readonly volume: string;
  readonly mountPath: string;
  readonly readOnly: boolean;
  readonly propagation?: string;
}

export type TemplateVolume =
  | { readonly name: string; readonly kind: 'configMap'; readonly configMap: string; readonly items: readonly { key: string; path: string }[] }
  | { readonly name: string; readonly kind: 'hostPath'; readonly path: string; readonly type?: string }
  | { readonly name: string; readonly kind: 'emptyDir' };

export interface PodTemplate {
  readonly daemonSet: string;
  readonly namespace: string;
  readonly hostNetwork: boolean;
  readonly hostPID: boolean;
  readonly terminationGracePeriodSeconds: number;
  readonly containers: readonly TemplateContainer[];
  readonly volumes: readonly TemplateVolume[];
  /** The ConfigMaps the volumes name, by name: key -> content. */
  readonly configMaps: ReadonlyMap<string, Readonly<Record<string, string>>>;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown, what: string): Obj => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`deploy/base: ${what} is not an object`);
  return v as Obj;
};
const list = (v: unknown, what: string): unknown[] => {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new Error(`deploy/base: ${what} is not a list`);
  return v;
};
const str = (v: unknown, what: string): string => {
  if (typeof v !== 'string' || !v) throw new Error(`deploy/base: ${what} must be a non-empty string`);
  return v;
};
const strings = (v: unknown, what: string): string[] => list(v, what).map((x, i) => (typeof x === 'number' ? String(x) : str(x, `${what}[${i}]`)));

/** Reads every YAML document of the kustomization's resources under `dir` (deploy/base). */
export function readManifests(dir: string): Obj[] {
  const kustomization = obj(parseAllDocuments(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'))[0]?.toJS(), 'kustomization.yaml');
  const docs: Obj[] = [];
  for (const file of strings(kustomization.resources, 'kustomization resources')) {
    for (const d of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      if (d.errors.length) throw new Error(`deploy/base/${file}: ${d.errors[0]!.message}`);
      const js: unknown = d.toJS();
      if (js) docs.push(obj(js, file));
    }
  }
  return docs;
}

/** The DaemonSet's pod template (exactly one DaemonSet expected) with its ConfigMaps. */
export function podTemplate(manifests: readonly Obj[]): PodTemplate {
  const daemonSets = manifests.filter((m) => m.kind === 'DaemonSet');
  if (daemonSets.length !== 1) throw new Error(`deploy/base: expected one DaemonSet, found ${daemonSets.length}`);
  const ds = daemonSets[0]!;
  const meta = obj(ds.metadata, 'DaemonSet metadata');
  const spec = obj(obj(obj(ds.spec, 'DaemonSet spec').template, 'pod template').spec, 'pod spec');
  const configMaps = new Map<string, Record<string, string>>();
  for (const m of manifests.filter((x) => x.kind === 'ConfigMap')) {
    configMaps.set(str(obj(m.metadata, 'ConfigMap metadata').name, 'ConfigMap name'), obj(m.data ?? {}, 'ConfigMap data') as Record<string, string>);
  }
  return {
    daemonSet: str(meta.name, 'DaemonSet name'),
    namespace: str(meta.namespace, 'DaemonSet namespace'),
    hostNetwork: spec.hostNetwork === true,
    hostPID: spec.hostPID === true,
    // The Kubernetes default when the field is absent.
    terminationGracePeriodSeconds: typeof spec.terminationGracePeriodSeconds === 'number' ? spec.terminationGracePeriodSeconds : 30,
    containers: list(spec.containers, 'containers').map((c, i) => container(obj(c, `containers[${i}]`))),
    volumes: list(spec.volumes, 'volumes').map((v, i) => volume(obj(v, `volumes[${i}]`))),
    configMaps,
  };
}

function container(c: Obj): TemplateContainer {
  const name = str(c.name, 'container name');
  const at = `container ${name}`;
  const sc = obj(c.securityContext ?? {}, `${at} securityContext`);
  const caps = obj(sc.capabilities ?? {}, `${at} capabilities`);
  const preStop = obj(obj(c.lifecycle ?? {}, `${at} lifecycle`).preStop ?? {}, `${at} preStop`);
  if (Object.keys(preStop).length && !preStop.exec) throw new Error(`deploy/base: ${at}: only exec preStop hooks are supported by the lab`);
  const limits = obj(obj(c.resources ?? {}, `${at} resources`).limits ?? {}, `${at} limits`);
  return {
    name,
    image: str(c.image, `${at} image`),
    ...(c.command !== undefined ? { command: strings(c.command, `${at} command`) } : {}),
    args: strings(c.args, `${at} args`),
    env: list(c.env, `${at} env`).map((e, i) => {
      const o = obj(e, `${at} env[${i}]`);
      const envName = str(o.name, `${at} env[${i}] name`);
      if (o.valueFrom !== undefined) {
        const ref = obj(obj(o.valueFrom, `${at} env ${envName} valueFrom`).fieldRef, `${at} env ${envName}: only fieldRef is supported`);
        return { name: envName, fieldPath: str(ref.fieldPath, `${at} env ${envName} fieldPath`) };
      }
      return { name: envName, value: String(o.value ?? '') };
    }),
    capAdd: strings(caps.add, `${at} capabilities.add`),
    capDrop: strings(caps.drop, `${at} capabilities.drop`),
    readOnlyRootFilesystem: sc.readOnlyRootFilesystem === true,
    privileged: sc.privileged === true,
    mounts: list(c.volumeMounts, `${at} volumeMounts`).map((m, i) => {
      const o = obj(m, `${at} volumeMounts[${i}]`);
      return {
        volume: str(o.name, `${at} volumeMounts[${i}] name`),
        mountPath: str(o.mountPath, `${at} volumeMounts[${i}] mountPath`),
        readOnly: o.readOnly === true,
        ...(typeof o.mountPropagation === 'string' ? { propagation: o.mountPropagation } : {}),
      };
    }),
    ...(preStop.exec ? { preStop: strings(obj(preStop.exec, `${at} preStop exec`).command, `${at} preStop command`) } : {}),
    ...(typeof limits.memory === 'string' ? { memoryLimit: limits.memory } : {}),
  };
}

function volume(v: Obj): TemplateVolume {
  const name = str(v.name, 'volume name');
  if (v.configMap !== undefined) {
    const cm = obj(v.configMap, `volume ${name} configMap`);
    return {
      name, kind: 'configMap', configMap: str(cm.name, `volume ${name} configMap name`),
      items: list(cm.items, `volume ${name} items`).map((it) => {
        const o = obj(it, `volume ${name} item`);
        return { key: str(o.key, `volume ${name} item key`), path: str(o.path, `volume ${name} item path`) };
      }),
    };
  }
  if (v.hostPath !== undefined) {
    const hp = obj(v.hostPath, `volume ${name} hostPath`);
    return { name, kind: 'hostPath', path: str(hp.path, `volume ${name} hostPath path`), ...(typeof hp.type === 'string' ? { type: hp.type } : {}) };
  }
  if (v.emptyDir !== undefined) return { name, kind: 'emptyDir' };
  throw new Error(`deploy/base: volume ${name}: only configMap, hostPath and emptyDir volumes are supported by the lab`);
}

/** What the kubelet knows about the pod it runs on a node: the downward API's sources. */
export interface PodIdentity {
  readonly nodeName: string;
  readonly podName: string;
  readonly namespace: string;
  readonly uid: string;
}

/** The env as the kubelet sets it: literal values, and fieldRefs filled from the pod. */
export function resolveEnv(env: readonly TemplateEnv[], pod: PodIdentity): Record<string, string> {
  const fields: Record<string, string> = {
    'spec.nodeName': pod.nodeName,
    'metadata.name': pod.podName,
    'metadata.namespace': pod.namespace,
    'metadata.uid': pod.uid,
  };
  const out: Record<string, string> = {};
  for (const e of env) {
    if ('value' in e) out[e.name] = e.value;
    else {
      const v = fields[e.fieldPath];
      if (v === undefined) throw new Error(`deploy/base: env ${e.name}: the lab cannot fill fieldPath ${e.fieldPath}`);
      out[e.name] = v;
    }
  }
  return out;
}

/** "512Mi" -> bytes; the Kubernetes quantity suffixes podman's --memory lacks. */
export function memoryBytes(q: string): number {
  const m = /^(\d+)(Ki|Mi|Gi|K|M|G)?$/.exec(q);
  if (!m) throw new Error(`deploy/base: memory limit "${q}" is not a quantity the lab understands`);
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, K: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}
