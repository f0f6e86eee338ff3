import { z } from 'zod';

/**
 * What a client asks for besides the upstream's cutout: up to eight renditions, each
 * made by the worker from the one ByByBG result (`renditions` on a job, a batch, a rerun).
 * The schema is the contract: the API validates with it, the OpenAPI document is
 * generated from it, and `resolveRenditions` turns what it accepted into the plans the
 * worker follows.
 */

const MAX_RENDITIONS = 8;
/** Longest side of any rendition: a 5,000 × 5,000 canvas is 100 MB decoded, the most one job may hold. */
export const MAX_RENDITION_SIDE = 5000;

const RENDITION_FORMATS = ['png', 'webp', 'jpeg'] as const;
export type RenditionFormat = (typeof RENDITION_FORMATS)[number];

/** File extension and media type of each format; keys are `renditions/<tenant>/<job>/<name>.<ext>`. */
export const RENDITION_MEDIA: Record<RenditionFormat, { extension: string; contentType: string }> = {
  png: { extension: 'png', contentType: 'image/png' },
  webp: { extension: 'webp', contentType: 'image/webp' },
  jpeg: { extension: 'jpg', contentType: 'image/jpeg' },
};

type RenditionCanvas = 'original' | 'square' | { width: number; height: number };

/** A spec with every field decided: what the job record stores and the worker renders. */
export interface RenditionPlan {
  name: string;
  format: RenditionFormat;
  /** JPEG and WebP quality; PNG is lossless and ignores it. */
  quality: number;
  /** `transparent` or `#rrggbb` (lower case). JPEG is never transparent. */
  background: string;
  crop: 'none' | 'subject';
  /** Margin on every side, as a fraction of the canvas's width (left, right) and height (top, bottom). */
  padding: number;
  canvas: RenditionCanvas;
  /** Bounds on the canvas's long side, in px; null: none. */
  maxSize: number | null;
  minSize: number | null;
}

const side = z
  .int({ error: 'must be a whole number of pixels' })
  .min(1, 'must be at least 1 px')
  .max(MAX_RENDITION_SIDE, `must be at most ${MAX_RENDITION_SIDE} px`);

const colour = z
  .string()
  .regex(/^#[0-9a-fA-F]{6}$/)
  .transform((text) => text.toLowerCase());

const presetNames = ['marketplace', 'web'] as const;

const renditionSpecSchema = z
  .strictObject({
    name: z
      .string({ error: 'is required: 1 to 32 characters of a-z, 0-9, _ and -' })
      .regex(/^[a-z0-9_-]{1,32}$/, 'must be 1 to 32 characters of a-z, 0-9, _ and -')
      .describe('Unique within the job; names the rendition in the job, its URL and the manifest'),
    preset: z
      .enum(presetNames, { error: 'must be "marketplace" or "web"' })
      .optional()
      .describe('A named starting point; fields given beside it override it'),
    format: z.enum(RENDITION_FORMATS, { error: 'must be "png", "webp" or "jpeg"' }).optional().describe('Default png'),
    quality: z
      .int({ error: 'must be a whole number from 1 to 100' })
      .min(1, 'must be from 1 to 100')
      .max(100, 'must be from 1 to 100')
      .optional()
      .describe('JPEG and WebP quality (PNG ignores it)'),
    background: z
      .union([z.literal('transparent'), colour], { error: 'must be "transparent" or a colour "#rrggbb"' })
      .optional()
      .describe('Behind the product; default transparent, white for a JPEG (a transparent JPEG is refused)'),
    crop: z
      .enum(['none', 'subject'], { error: 'must be "none" or "subject"' })
      .optional()
      .describe('subject: to the bounding box of the product (pixels at least 25 % opaque)'),
    padding: z
      .number({ error: 'must be a number from 0 to 0.45' })
      .min(0, 'must be from 0 to 0.45')
      .max(0.45, 'must be from 0 to 0.45')
      .optional()
      .describe('Margin on every side, as a fraction of the canvas'),
    canvas: z
      .union([z.enum(['original', 'square']), z.strictObject({ width: side, height: side })], {
        error: 'must be "original", "square" or {"width": W, "height": H}',
      })
      .optional()
      .describe('The product is fitted and centred on it'),
    max_size: side.optional().describe('Largest long side, in px'),
    min_size: side.optional().describe('Smallest long side, in px; reaching it may upscale (upscaled: true)'),
  })
  .superRefine((spec, ctx) => {
    const preset = spec.preset ? RENDITION_PRESETS[spec.preset] : {};
    const format = spec.format ?? preset.format ?? 'png';
    // JPEG has no alpha: flattening onto a colour nobody asked for would hide the mistake.
    if (format === 'jpeg' && spec.background === 'transparent') {
      ctx.addIssue({
        code: 'custom',
        path: ['background'],
        message: 'cannot be "transparent" for a JPEG (no alpha); give a colour or use png or webp',
      });
    }
    if (typeof spec.canvas === 'object') {
      for (const field of ['max_size', 'min_size'] as const) {
        if (spec[field] !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: [field],
            message: 'does not apply to a canvas of a given width and height',
          });
      }
      return;
    }
    const max = spec.max_size ?? preset.max_size;
    const min = spec.min_size ?? preset.min_size;
    if (max !== undefined && min !== undefined && min > max) {
      ctx.addIssue({
        code: 'custom',
        path: [spec.min_size !== undefined ? 'min_size' : 'max_size'],
        message: `min_size (${min}) is larger than max_size (${max})`,
      });
    }
  })
  .meta({ id: 'RenditionSpec', description: 'One rendition to make from the cutout' });

type RenditionSpec = z.output<typeof renditionSpecSchema>;
type PresetFields = Omit<RenditionSpec, 'name' | 'preset'>;

/**
 * `marketplace`: Amazon's main-image rule and its like (pure white, square, product ≈ 85 %
 * of the frame, ≥ 1000 px). `web`: a transparent WebP for a shop page.
 */
const RENDITION_PRESETS: Record<(typeof presetNames)[number], PresetFields> = {
  marketplace: {
    format: 'jpeg',
    quality: 90,
    background: '#ffffff',
    crop: 'subject',
    padding: 0.075,
    canvas: 'square',
    min_size: 1000,
  },
  web: {
    format: 'webp',
    quality: 80,
    background: 'transparent',
    crop: 'none',
    padding: 0,
    canvas: 'original',
    max_size: 1600,
  },
};

const DEFAULT_QUALITY: Record<RenditionFormat, number> = { png: 100, webp: 80, jpeg: 90 };

export const renditionsSchema = z
  .array(renditionSpecSchema, { error: 'must be a JSON array of rendition specs' })
  .max(MAX_RENDITIONS, `may hold at most ${MAX_RENDITIONS} specs`)
  .superRefine((specs, ctx) => {
    const seen = new Set<string>();
    specs.forEach((spec, index) => {
      if (seen.has(spec.name))
        ctx.addIssue({
          code: 'custom',
          path: [index, 'name'],
          message: `"${spec.name}" is used by an earlier spec; names must be unique`,
        });
      seen.add(spec.name);
    });
  });

/** The preset applied under the fields given beside it, and every default filled in. */
function resolveRendition(spec: RenditionSpec): RenditionPlan {
  const preset: PresetFields = spec.preset ? RENDITION_PRESETS[spec.preset] : {};
  const merged = { ...preset, ...withoutUndefined(spec) };
  const format = merged.format ?? 'png';
  const fixedCanvas = typeof merged.canvas === 'object';
  // A preset's transparent background under a JPEG format given beside it becomes white.
  const background =
    format === 'jpeg' && (merged.background ?? 'transparent') === 'transparent'
      ? '#ffffff'
      : (merged.background ?? 'transparent');
  return {
    name: spec.name,
    format,
    quality: merged.quality ?? DEFAULT_QUALITY[format],
    background,
    crop: merged.crop ?? 'none',
    padding: merged.padding ?? 0,
    canvas: merged.canvas ?? 'original',
    // A canvas of a given size fixes the size: a preset's bounds no longer apply.
    maxSize: fixedCanvas ? null : (merged.max_size ?? null),
    minSize: fixedCanvas ? null : (merged.min_size ?? null),
  };
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>;
}

export type RenditionsParse = { ok: true; plans: RenditionPlan[] } | { ok: false; message: string };

/**
 * Validates a parsed JSON value as `renditions` and resolves it. A refusal names each
 * bad spec by position and name, and the field: `renditions[1] ("thumb").format: must be …`.
 */
export function parseRenditions(value: unknown): RenditionsParse {
  const parsed = renditionsSchema.safeParse(value);
  if (parsed.success) return { ok: true, plans: parsed.data.map(resolveRendition) };
  return { ok: false, message: describeIssues(parsed.error.issues, value) };
}

const MAX_LISTED_ISSUES = 3;

function describeIssues(issues: readonly z.core.$ZodIssue[], input: unknown): string {
  const described = issues.slice(0, MAX_LISTED_ISSUES).map((issue) => {
    const [index, ...field] = issue.path;
    if (typeof index !== 'number') return `renditions ${issue.message}`;
    const name = Array.isArray(input) ? (input[index] as { name?: unknown } | null)?.name : undefined;
    const label = `renditions[${index}]${typeof name === 'string' && name ? ` ("${name.slice(0, 32)}")` : ''}`;
    if (issue.code === 'unrecognized_keys') return `${label}.${issue.keys[0]}: is not a rendition field`;
    if (field.length === 0) return `${label}: ${issue.code === 'invalid_type' ? 'must be an object' : issue.message}`;
    return `${label}.${field.join('.')}: ${issue.message}`;
  });
  const more = issues.length - MAX_LISTED_ISSUES;
  return `${described.join('; ')}${more > 0 ? ` (and ${more} more)` : ''}`;
}
