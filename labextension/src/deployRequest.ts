// Written by `python -m kz_jupyter.server_ext.api.typescript_types` from the deploy
// schema (kz_jupyter/deploy_options.py): do not edit.

/** A body for `POST /kz/api/deployments` (and /kz/api/plan): null means default. */
export interface IDeployRequest {
  model: string;
  engine?: string | null;
  context_length?: number | null;
  replicas?: number | null;
  gpu_layers?: number | null;
  parallel?: number | null;
  dtype?: string | null;
  quantization?: string | null;
  tensor_parallel?: number | null;
  gpu_memory_utilization?: number | null;
  lora_adapters?: Record<string, string> | null;
  draft_model?: string | null;
  kv_cache_type?: 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q5_1' | 'q5_0' | 'q4_1' | 'q4_0' | 'iq4_nl' | null;
  extra_args?: string[] | null;
  force?: boolean | null;
  resources?: Record<string, number> | null;
  num_gpus?: number | null;
  name?: string | null;
  revision?: string | null;
  keep_alive?: number | null;
  pin?: boolean | null;
  share?: string | string[] | null;
}

/** The bounds of each number option, as the server checks them. */
export interface IBounds {
  minimum?: number;
  maximum?: number;
}

export const DEPLOY_BOUNDS: Record<string, IBounds> = {
  context_length: { minimum: 64, maximum: 1048576 },
  replicas: { minimum: 1, maximum: 16 },
  gpu_layers: { minimum: -1, maximum: 100000 },
  parallel: { minimum: 1, maximum: 256 },
  tensor_parallel: { minimum: 1, maximum: 64 },
  gpu_memory_utilization: { maximum: 1 },
  num_gpus: { minimum: 0 },
  keep_alive: { minimum: -1, maximum: 2592000 },
};
