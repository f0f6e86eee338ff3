/**
 * Makes the README's picture of a marketplace rendition beside its original, with the
 * code that runs in production: the emulator's background removal stands in for ByByBG,
 * the worker's rendition pipeline makes the marketplace JPEG.
 *
 *   node scripts/make-readme-images.ts   → docs/images/marketplace-{original,rendition}.jpg
 */
import { writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { parseRenditions } from '@cutout/shared/renditions';
import { removeBackground } from '../apps/emulator/src/cutout.ts';
import { layoutRendition, subjectBox } from '../apps/worker/src/postprocess/layout.ts';
import { decodeCutout, renderRendition } from '../apps/worker/src/postprocess/render.ts';

const OUT = new URL('../docs/images/', import.meta.url);

/** A bottle with a label, small and off-centre on a warm grey studio backdrop: what a catalog photo often is. */
const PHOTO_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="800">
  <rect width="1200" height="800" fill="#ece8df"/>
  <g transform="translate(310 170)">
    <rect x="62" y="0" width="56" height="44" rx="8" fill="#2d3142"/>
    <path d="M70 44 h40 v46 c0 22 50 34 50 80 v300 c0 20 -14 34 -34 34 h-72 c-20 0 -34 -14 -34 -34 v-300 c0 -46 50 -58 50 -80 z" fill="#1f7a6d"/>
    <rect x="20" y="230" width="140" height="150" rx="6" fill="#f4d35e"/>
    <rect x="40" y="262" width="100" height="16" rx="4" fill="#2d3142"/>
    <rect x="40" y="292" width="72" height="10" rx="3" fill="#2d3142" opacity="0.7"/>
    <rect x="40" y="312" width="86" height="10" rx="3" fill="#2d3142" opacity="0.7"/>
    <path d="M52 120 c-6 40 -8 120 -6 260" stroke="#ffffff" stroke-opacity="0.35" stroke-width="10" fill="none" stroke-linecap="round"/>
  </g>
</svg>`;

const photo = await sharp(Buffer.from(PHOTO_SVG)).jpeg({ quality: 82 }).toBuffer();
const cutout = await removeBackground(photo, { tolerance: 32 });
const parsed = parseRenditions([{ name: 'amazon', preset: 'marketplace' }]);
if (!parsed.ok) throw new Error(parsed.message);
const [plan] = parsed.plans;
const decoded = await decodeCutout(cutout, 50_000_000);
const layout = layoutRendition(plan!, decoded, subjectBox(decoded.rgba, decoded));
const rendition = await renderRendition(decoded, plan!, layout);

writeFileSync(new URL('marketplace-original.jpg', OUT), photo);
writeFileSync(new URL('marketplace-rendition.jpg', OUT), rendition.data);
console.log(
  `original ${photo.length} bytes, rendition ${rendition.width}×${rendition.height} ${rendition.data.length} bytes (product ${layout.product.width}×${layout.product.height})`,
);
