/* clip_score.h — `locus clip-score`: CLIP-T of images against prompts (models/clip.h). */
#ifndef LOCUS_CLIP_SCORE_H
#define LOCUS_CLIP_SCORE_H

/* locus clip-score --clip DIR --image PNG... --prompt TEXT... [--dump FILE] [--threads N]
 * Prints the CLIP-T table (image x prompt) and the mean per prompt; --dump writes img{i}.pixel_values,
 * img{i}.image_embeds, prompt{j}.input_ids, prompt{j}.text_embeds, cos and clip_score to a safetensors file.
 * Returns 0, or 2 after one error line on stderr (nothing on stdout). */
int locus_cmd_clip_score(int argc, char **argv);

#endif
