import pLimit from 'p-limit';
import sharp, { type Sharp } from 'sharp';
import { renditionKey, type Logger, type Storage } from '@cutout/shared/infra';
import { RENDITION_MEDIA, type RenditionPlan } from '@cutout/shared/renditions';
import type { JobRecord, StoredRendition } from '@cutout/shared/stores';
import type { QualityReport, QualityThresholds } from '@cutout/shared/views';
import { layoutRendition, RenditionError, subjectBox, type Box } from './layout.ts';
import { measureAlpha, qualityFlags } from './quality.ts';
import { decodeCutout, rawInput, renderRendition, sampleAlpha, type DecodedCutout } from './render.ts';

/** What the worker adds to a succeeded job from its cutout. */
type CutoutOutputFields = Pick<JobRecord, 'quality' | 'qualityFlagged' | 'renditions'>;

export interface CutoutOutputs {
  /**
   * Measures the cutout (unless `quality` is known: a reused result) and makes and stores
   * the job's renditions. A rendition that cannot be made records why; only a failure to
   * store one throws, so the job is retried (without a second upstream call).
   */
  make(record: JobRecord, cutout: Buffer, known?: { quality?: QualityReport }): Promise<CutoutOutputFields>;
}

export interface CutoutOutputDeps {
  storage: Storage;
  maxPixels: number;
  thresholds: QualityThresholds;
  /** Cutouts decoded for renditions at once in this process (RENDITION_CONCURRENCY). */
  decodeSlots: number;
  log: Logger;
}

export function makeCutoutOutputs({
  storage,
  maxPixels,
  thresholds,
  decodeSlots,
  log,
}: CutoutOutputDeps): CutoutOutputs {
  // libvips' operation cache keeps decoded images for reuse; a worker sees each cutout once.
  sharp.cache(false);
  // A decoded cutout is 4 bytes a pixel and its encoders take as much again: the process
  // holds `decodeSlots` of them, however many jobs it runs. Rendering is CPU-bound, so
  // more at once than the machine has cores would buy nothing but memory.
  const decodeSlot = pLimit(decodeSlots);
  async function measure(input: Sharp): Promise<QualityReport> {
    const { alpha, width, height } = await sampleAlpha(input);
    const measures = measureAlpha(alpha, width, height);
    return { flags: qualityFlags(measures, thresholds), ...measures };
  }

  async function makeOne(
    record: JobRecord,
    plan: RenditionPlan,
    decoded: DecodedCutout,
    subject: Box | null,
  ): Promise<StoredRendition> {
    let rendered: Awaited<ReturnType<typeof renderRendition>>;
    let layout: ReturnType<typeof layoutRendition>;
    try {
      layout = layoutRendition(plan, decoded, subject);
      rendered = await renderRendition(decoded, plan, layout);
    } catch (error) {
      if (error instanceof RenditionError) return { error: error.message };
      log.warn({ job_id: record.id, rendition: plan.name, err: error }, 'rendition not encoded');
      return { error: 'the rendition could not be encoded' };
    }
    const { extension, contentType } = RENDITION_MEDIA[plan.format];
    const key = renditionKey(record.tenantId, record.id, plan.name, extension);
    const stored = await storage.putBuffer(key, rendered.data, contentType);
    return {
      key,
      contentType,
      width: rendered.width,
      height: rendered.height,
      bytes: stored.bytes,
      upscaled: layout.upscaled,
    };
  }

  async function measureOnly(record: JobRecord, cutout: Buffer): Promise<QualityReport | undefined> {
    // Streamed through a downscale: the cutout is never decoded whole.
    return measure(sharp(cutout, { limitInputPixels: maxPixels })).catch((error: unknown) => {
      log.warn({ job_id: record.id, err: error }, 'cutout quality not measured');
      return undefined;
    });
  }

  async function withRenditions(
    record: JobRecord,
    cutout: Buffer,
    plans: RenditionPlan[],
    known: { quality?: QualityReport },
  ): Promise<CutoutOutputFields> {
    let undecodable = '';
    const decoded = await decodeCutout(cutout, maxPixels).catch((error: unknown) => {
      undecodable = /pixel limit/i.test((error as Error).message)
        ? `the cutout is larger than ${maxPixels} pixels (MAX_IMAGE_PIXELS)`
        : 'the cutout could not be decoded';
      log.warn({ job_id: record.id, err: error }, 'cutout not decoded for renditions');
      return undefined;
    });
    // Measured from the pixels just decoded, the same way as a cutout without renditions.
    const quality =
      known.quality ??
      (decoded ? await measure(rawInput(decoded)).catch(() => undefined) : await measureOnly(record, cutout));
    const subject = decoded && plans.some((plan) => plan.crop === 'subject') ? subjectBox(decoded.rgba, decoded) : null;
    const renditions: Record<string, StoredRendition> = {};
    // One at a time: a job holds its decoded cutout and a single rendition in memory, however many it asks for.
    for (const plan of plans)
      renditions[plan.name] = decoded ? await makeOne(record, plan, decoded, subject) : { error: undecodable };
    return { quality, qualityFlagged: quality?.flags.length ? 1 : undefined, renditions };
  }

  return {
    async make(record, cutout, known = {}) {
      const plans = record.renditionPlans ?? [];
      if (plans.length > 0) return decodeSlot(() => withRenditions(record, cutout, plans, known));
      const quality = known.quality ?? (await measureOnly(record, cutout));
      return { quality, qualityFlagged: quality?.flags.length ? 1 : undefined };
    },
  };
}
