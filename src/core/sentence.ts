/**
 * Messages are built from parts written elsewhere (driver errors, cloud answers, hints), some ending in a full stop
 * and some not. These two keep the joins readable: no "…does not exist Check the user…", no "…failed..".
 */

/** `text` ending as a sentence: a full stop added unless it already ends with . ! ? or a closing quote after one. */
export function sentence(text: string): string {
  const trimmed = text.trimEnd();
  return trimmed === "" || /[.!?]["'”)\]]?$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

/** `text` for embedding before a full stop of its own: its trailing full stops removed. */
export function clause(text: string): string {
  return text.trimEnd().replace(/\.+$/, "");
}
