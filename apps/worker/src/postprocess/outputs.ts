import sharp, { type Sharp } from 'sharp';
import {
  RENDITION_MEDIA, renditionKey,
  type JobRecord, type Logger, type QualityReport, type QualityThresholds, type RenditionPlan, type Storage, type StoredRendition,
} from '@cutout/shared';
import { layoutRendition, RenditionError, subjectBox, type Box } from './layout.ts';
import { measureAlpha, qualityFlags } from './quality.ts';
import { decodeCutout, rawInput, renderRendition, sampleAlpha, type DecodedCutout } from './render.ts';

/** What the worker adds to a succeeded job from its cutout. */
export type CutoutOutputFields = Pick<JobRecord, 'quality' | 'qualityFlagged' | 'renditions'>;

export interface CutoutOutputs {
  /**
   * Measures the cutout (unless `quality` is known: a reused result) and makes and stores
   * the job's renditions. A rendition that cannot be made records why; only a failure to
   * store one throws, so the job is retried (without a second upstream call).
   */
  make(record: JobRecord, cutout: Buffer, known?: { quality?: QualityReport }): Promise<CutoutOutputFields>;
}

export interface CutoutOutputDeps { storage: Storage; maxPixels: number; thresholds: QualityThresholds; log: Logger }

export function makeCutoutOutputs({ storage, maxPixels, thresholds, log }: CutoutOutputDeps): CutoutOutputs {
  // libvips' operation cache keeps decoded images for reuse; a worker sees each cutout once.
  sharp.cache(false);
  async function measure(input: Sharp): Promise<QualityReport> {
    const { alpha, width, height } = await sampleAlpha(input);
    const measures = measureAlpha(alpha, width, height);
    return { flags: qualityFlags(measures, thresholds), ...measures };
  }

  async function makeOne(record: JobRecord, plan: RenditionPlan, decoded: DecodedCutout, subject: Box | null): Promise<StoredRendition> {
    let rendered;
    let layout;
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
    return { key, contentType, width: rendered.width, height: rendered.height, bytes: stored.bytes, upscaled: layout.upscaled };
  }

  return {
    async make(record, cutout, known = {}) {
      const plans = record.renditionPlans ?? [];
      let decoded: DecodedCutout | undefined;
      let undecodable: string | undefined;
      if (plans.length > 0) {
        decoded = await decodeCutout(cutout, maxPixels).catch((error: unknown) => {
          undecodable = /pixel limit/i.test((error as Error).message) ? `the cutout is larger than ${maxPixels} pixels (MAX_IMAGE_PIXELS)` : 'the cutout could not be decoded';
          log.warn({ job_id: record.id, err: error }, 'cutout not decoded for renditions');
          return undefined;
        });
      }
      // Decoded for renditions: measured from the same pixels; otherwise streamed through a downscale, never decoded whole.
      const quality = known.quality ?? await measure(decoded ? rawInput(decoded) : sharp(cutout, { limitInputPixels: maxPixels })).catch((error: unknown) => {
        log.warn({ job_id: record.id, err: error }, 'cutout quality not measured');
        return undefined;
      });
      const fields: CutoutOutputFields = { quality, qualityFlagged: quality?.flags.length ? 1 : undefined };
      if (plans.length === 0) return fields;
      const subject = decoded && plans.some((plan) => plan.crop === 'subject') ? subjectBox(decoded.rgba, decoded) : null;
      const renditions: Record<string, StoredRendition> = {};
      // One at a time: a job holds its decoded cutout and a single rendition in memory, however many it asks for.
      for (const plan of plans) renditions[plan.name] = decoded ? await makeOne(record, plan, decoded, subject) : { error: undecodable! };
      return { ...fields, renditions };
    },
  };
}
