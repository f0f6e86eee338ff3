/**
 * Automatic checks of every cutout, from its alpha channel (the worker measures, everything
 * else reads). A flag is advice: a flagged job still succeeds.
 */
export const QUALITY_FLAGS = [
  'empty_cutout',
  'background_not_removed',
  'subject_cut_off',
  'mostly_semitransparent',
  'tiny_subject',
] as const;
export type QualityFlag = (typeof QUALITY_FLAGS)[number];

/** What each flag means, in the words the review page and the documentation use. */
export const QUALITY_FLAG_TEXT: Record<QualityFlag, string> = {
  empty_cutout: 'Nothing is left of the product: the cutout is (almost) empty',
  background_not_removed: 'The background was not removed: (almost) the whole frame is still opaque',
  subject_cut_off: 'The product touches the edge of the frame: part of it may be cut off',
  mostly_semitransparent: 'Much of the product is only partly opaque (ghosting, or glass)',
  tiny_subject: 'The product covers a very small part of the frame',
};

/** Measures of one cutout, each a share from 0 to 1 (three decimals). */
export interface QualityReport {
  flags: QualityFlag[];
  /** Pixels at least faintly visible (alpha ≥ 16 of 255), of the whole frame. */
  subjectCoverage: number;
  /** The largest share of one edge (top, bottom, left or right) that opaque pixels (alpha ≥ 240) touch. */
  edgeContact: number;
  /** Of the visible pixels, those only partly opaque (alpha 16–239). */
  semitransparentShare: number;
}

/** When each flag is raised (QUALITY_* settings). */
export interface QualityThresholds {
  /** empty_cutout when subject_coverage is below this. */
  emptyBelow: number;
  /** background_not_removed when subject_coverage is at or above this. */
  unremovedFrom: number;
  /** subject_cut_off when edge_contact is at or above this. */
  edgeContactFrom: number;
  /** mostly_semitransparent when semitransparent_share is at or above this. */
  semitransparentFrom: number;
  /** tiny_subject when subject_coverage is below this (and the cutout is not empty). */
  tinyBelow: number;
}

export const DEFAULT_QUALITY_THRESHOLDS: QualityThresholds = {
  emptyBelow: 0.005,
  unremovedFrom: 0.98,
  edgeContactFrom: 0.1,
  semitransparentFrom: 0.5,
  tinyBelow: 0.02,
};

/** The job view's `quality`. */
export interface QualityView {
  flags: QualityFlag[];
  subject_coverage: number;
  edge_contact: number;
  semitransparent_share: number;
}

export const qualityView = (report: QualityReport | undefined): QualityView | null =>
  report
    ? {
        flags: report.flags,
        subject_coverage: report.subjectCoverage,
        edge_contact: report.edgeContact,
        semitransparent_share: report.semitransparentShare,
      }
    : null;
