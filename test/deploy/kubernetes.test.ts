import { execFileSync } from 'node:child_process';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Container } from 'kubernetes-models/v1/Container';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { ISecret } from 'kubernetes-models/v1/Secret';
import type { IService } from 'kubernetes-models/v1/Service';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { validateApiKeys } from '../../src/config.js';
import { dockerStartCommand, listRepoFiles, readYamlDocuments, serviceEnvVars } from './helpers.js';

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
}

/** The Kubernetes kinds this project deploys, with the schema each is validated against. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

const DIR = 'deploy/kubernetes';
const manifestFiles = listRepoFiles(DIR).filter((f) => /\.ya?ml$/.test(f) && !f.endsWith('/kustomization.yaml'));
const objects = manifestFiles.flatMap((file) => readYamlDocuments(file).map((doc) => ({ file, doc: doc as KubeObject })));

function one<T>(kind: string): T {
  const found = objects.filter((o) => o.doc.kind === kind);
  if (found.length !== 1) throw new Error(`expected exactly one ${kind} in ${DIR}, found ${found.length}`);
  return found[0].doc as unknown as T;
}

/** DNS-1123 label (Service, Deployment and most object names must be one). */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function validateAgainstSchema(doc: KubeObject): void {
  const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
  if (!Model) throw new Error(`no schema for ${doc.apiVersion} ${doc.kind}: add it to MODELS`);
  new Model(doc as never).validate();
}

describe('Kubernetes manifests: schemas', () => {
  it('has the expected manifests', () => {
    expect(objects.map((o) => o.doc.kind).sort()).toEqual(
      ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Secret', 'Service'].sort(),
    );
  });

  for (const { file, doc } of objects) {
    it(`${file}: ${doc.kind} ${doc.metadata?.name} validates against the ${doc.apiVersion} schema`, () => {
      expect(() => validateAgainstSchema(doc)).not.toThrow();
      expect(doc.metadata.name).toMatch(DNS_LABEL);
    });
  }

  it('the schema check rejects a broken object (it is not vacuous)', () => {
    const deployment = structuredClone(one<IDeployment>('Deployment')) as unknown as KubeObject & {
      spec: { replicas: unknown; selector?: unknown };
    };
    deployment.spec.replicas = 'two';
    expect(() => validateAgainstSchema(deployment)).toThrow(/replicas/);
    delete deployment.spec.selector;
    deployment.spec.replicas = 2;
    expect(() => validateAgainstSchema(deployment)).toThrow(/selector/);
  });
});

describe('Kubernetes manifests: kustomization', () => {
  const kustomization = readYamlDocuments(`${DIR}/kustomization.yaml`)[0] as {
    resources: string[];
    images: { name: string; newName?: string; newTag?: string }[];
  };

  it('lists every manifest in the folder, and only those', () => {
    expect([...kustomization.resources].sort()).toEqual(manifestFiles.map((f) => f.slice(DIR.length + 1)).sort());
  });

  it('sets the image the Deployment names', () => {
    const deployment = one<IDeployment>('Deployment');
    const image = deployment.spec!.template.spec!.containers[0].image;
    expect(kustomization.images.map((i) => i.name)).toContain(image);
  });

  let kubectl = true;
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore', timeout: 20_000 });
  } catch {
    kubectl = false;
  }

  it.skipIf(!kubectl)('renders with `kubectl kustomize`, and what it renders still validates', () => {
    const rendered = execFileSync('kubectl', ['kustomize', DIR], { encoding: 'utf8', timeout: 60_000 });
    const docs = parseAllDocuments(rendered).map((d) => d.toJS() as KubeObject);
    expect(docs).toHaveLength(objects.length);
    for (const doc of docs) {
      expect(() => validateAgainstSchema(doc)).not.toThrow();
      expect(doc.metadata.labels?.['app.kubernetes.io/part-of']).toBe('forecast-service');
    }
    const deployment = docs.find((d) => d.kind === 'Deployment') as unknown as IDeployment;
    const image = kustomization.images[0];
    expect(deployment.spec!.template.spec!.containers[0].image).toBe(`${image.newName}:${image.newTag}`);
  });
});

describe('Kubernetes manifests: the pieces fit together', () => {
  const deployment = one<IDeployment>('Deployment');
  const service = one<IService>('Service');
  const hpa = one<IHorizontalPodAutoscaler>('HorizontalPodAutoscaler');
  const pdb = one<IPodDisruptionBudget>('PodDisruptionBudget');
  const secret = one<ISecret>('Secret');
  const configMap = one<IConfigMap>('ConfigMap');
  const pod = deployment.spec!.template;
  const container = pod.spec!.containers[0];

  it('selectors match the pod labels', () => {
    const labels = pod.metadata!.labels!;
    const matches = (selector: Record<string, string>): boolean =>
      Object.entries(selector).every(([k, v]) => labels[k] === v);
    expect(matches(deployment.spec!.selector.matchLabels!)).toBe(true);
    expect(matches(service.spec!.selector!)).toBe(true);
    expect(matches(pdb.spec!.selector!.matchLabels!)).toBe(true);
  });

  it('runs the image as built: its CMD, on port 8000', () => {
    // No command/args: the image's ENTRYPOINT (tini) and CMD (serve --models /models) apply.
    expect(container.command).toBeUndefined();
    expect(container.args).toBeUndefined();
    expect(dockerStartCommand()).toEqual(['node', 'dist/cli/index.js', 'serve', '--models', '/models']);
    const http = container.ports!.find((p) => p.name === 'http');
    expect(http?.containerPort).toBe(8000);
    expect(container.env!.find((e) => e.name === 'PORT')?.value).toBe(String(http!.containerPort));
    expect(service.spec!.ports![0].targetPort).toBe('http');
  });

  it('probes /healthz for liveness and /readyz for readiness', () => {
    expect(container.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 'http' });
    expect(container.readinessProbe?.httpGet).toMatchObject({ path: '/readyz', port: 'http' });
    expect(container.startupProbe?.httpGet?.path).toBe('/healthz');
  });

  it('sets resource requests and limits', () => {
    const { requests, limits } = container.resources!;
    for (const r of ['cpu', 'memory']) {
      expect(requests?.[r], `requests.${r}`).toBeDefined();
      expect(limits?.[r], `limits.${r}`).toBeDefined();
    }
  });

  it('runs as non-root, without privilege escalation, on a read-only root filesystem', () => {
    const podSecurity = pod.spec!.securityContext!;
    expect(podSecurity.runAsNonRoot).toBe(true);
    expect(podSecurity.runAsUser).toBeGreaterThan(0);
    const security = container.securityContext!;
    expect(security.allowPrivilegeEscalation).toBe(false);
    expect(security.readOnlyRootFilesystem).toBe(true);
    expect(security.capabilities?.drop).toContain('ALL');
    // What the service may write (the SQLite fallback at /data, temp files) is an emptyDir.
    const mounts = container.volumeMounts!.map((m) => m.mountPath);
    expect(mounts).toEqual(expect.arrayContaining(['/tmp', '/data']));
  });

  it('takes API_KEYS and DATABASE_URL from the Secret, the rest from the ConfigMap', () => {
    const fromSecret = container.env!.filter((e) => e.valueFrom?.secretKeyRef);
    expect(fromSecret.map((e) => e.name).sort()).toEqual(['API_KEYS', 'DATABASE_URL']);
    for (const e of fromSecret) {
      expect(e.valueFrom!.secretKeyRef!.name).toBe(secret.metadata!.name);
      expect(Object.keys(secret.stringData!)).toContain(e.valueFrom!.secretKeyRef!.key);
    }
    expect(container.envFrom!.map((e) => e.configMapRef?.name)).toContain(configMap.metadata!.name);
  });

  it('names only environment variables the service reads', () => {
    const known = serviceEnvVars();
    const names = [...container.env!.map((e) => e.name), ...Object.keys(configMap.data!)];
    expect(names.filter((n) => !known.has(n))).toEqual([]);
    // In a pod, one worker per node core would oversubscribe the CPU limit.
    expect(configMap.data!.WEB_CONCURRENCY).toBe('1');
  });

  it('the example Secret is an example: the service refuses its placeholder key', () => {
    expect(secret.stringData!.DATABASE_URL).toMatch(/^postgres(ql)?:\/\//);
    expect(() => validateApiKeys([secret.stringData!.API_KEYS], 'API_KEYS')).toThrow(/at least 16/);
  });

  it('drains before the grace period ends', () => {
    const grace = pod.spec!.terminationGracePeriodSeconds! * 1000;
    const preStop = Number(container.lifecycle?.preStop?.exec?.command?.[1] ?? 0) * 1000;
    expect(Number(configMap.data!.SHUTDOWN_TIMEOUT_MS) + preStop).toBeLessThan(grace);
  });

  it('autoscales the Deployment between sensible bounds', () => {
    expect(hpa.spec!.scaleTargetRef).toMatchObject({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata!.name });
    expect(hpa.spec!.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec!.maxReplicas).toBeGreaterThan(hpa.spec!.minReplicas!);
    expect(deployment.spec!.replicas).toBe(hpa.spec!.minReplicas);
    expect(hpa.spec!.metrics!.some((m) => m.resource?.name === 'cpu')).toBe(true);
    expect(pdb.spec!.minAvailable).toBeLessThan(hpa.spec!.minReplicas!);
  });
});

describe('KServe InferenceService', () => {
  const docs = readYamlDocuments('deploy/kserve/inferenceservice.yaml');
  const isvc = docs[0] as KubeObject & {
    metadata: { annotations?: Record<string, string> };
    spec: { predictor: { containers: IContainer[]; minReplicas?: number; maxReplicas?: number; [k: string]: unknown } };
  };

  it('is one serving.kserve.io/v1beta1 InferenceService with a valid name', () => {
    expect(docs).toHaveLength(1);
    expect(isvc.apiVersion).toBe('serving.kserve.io/v1beta1');
    expect(isvc.kind).toBe('InferenceService');
    // KServe derives host names from it: a DNS-1123 label, and short.
    expect(isvc.metadata.name).toMatch(DNS_LABEL);
    expect(isvc.metadata.name.length).toBeLessThanOrEqual(45);
  });

  it('has a custom predictor container, and no framework predictor beside it', () => {
    const predictor = isvc.spec.predictor;
    expect(Array.isArray(predictor.containers)).toBe(true);
    expect(predictor.containers).toHaveLength(1);
    const frameworks = ['model', 'sklearn', 'xgboost', 'tensorflow', 'pytorch', 'triton', 'onnx', 'huggingface', 'pmml', 'lightgbm', 'paddle'];
    expect(Object.keys(predictor).filter((k) => frameworks.includes(k))).toEqual([]);
    expect(predictor.minReplicas).toBeGreaterThanOrEqual(1);
    expect(predictor.maxReplicas).toBeGreaterThanOrEqual(predictor.minReplicas!);
  });

  const container = isvc.spec.predictor.containers[0];

  it('the container is a valid core/v1 Container', () => {
    expect(() => new Container(container).validate()).not.toThrow();
    expect(container.name).toBe('kserve-container');
    expect(container.image).toMatch(/forecast-service:/);
  });

  it('declares the Open Inference Protocol v2 (PROTOCOL=v2, how KServe reads a custom container protocol)', () => {
    expect(container.env!.find((e) => e.name === 'PROTOCOL')?.value).toBe('v2');
  });

  it('leaves PORT to Knative and serves on its single declared port', () => {
    expect(container.env!.some((e) => e.name === 'PORT')).toBe(false);
    expect(container.ports).toHaveLength(1);
    expect(container.ports![0]).toMatchObject({ containerPort: 8000, name: 'h1c' });
  });

  it('runs the same service as the image, with the same probes and secrets', () => {
    expect(container.args).toEqual(dockerStartCommand());
    expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 8000 });
    expect(container.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 8000 });
    const secretEnv = container.env!.filter((e) => e.valueFrom?.secretKeyRef).map((e) => e.name);
    expect(secretEnv.sort()).toEqual(['API_KEYS', 'DATABASE_URL']);
    const known = serviceEnvVars();
    // PROTOCOL is KServe's; every other variable is one the service reads.
    expect(container.env!.map((e) => e.name).filter((n) => n !== 'PROTOCOL' && !known.has(n))).toEqual([]);
    expect(container.securityContext?.runAsNonRoot).toBe(true);
  });
});
