/**
 * Topic templates: "cams/{nodeId}/punches/{serial}" with a punch's fields put in. The config schema already refuses a
 * template with wildcards or empty levels; what is left to check is each value put in, which comes from a device.
 */

export type TopicValues = Readonly<Record<string, string>>;

/** A template split once into literal text and placeholder names, so a punch's topic is a join. */
export class TopicTemplate {
  readonly #parts: readonly (string | { readonly name: string })[];
  readonly template: string;

  constructor(template: string) {
    this.template = template;
    const parts: (string | { name: string })[] = [];
    let last = 0;
    for (const m of template.matchAll(/\{([A-Za-z]+)\}/g)) {
      if (m.index > last) parts.push(template.slice(last, m.index));
      parts.push({ name: m[1] as string });
      last = m.index + m[0].length;
    }
    if (last < template.length) parts.push(template.slice(last));
    this.#parts = parts;
  }

  /** The topic, or why these values cannot make one (the punch's own fields are at fault, so that is permanent). */
  render(values: TopicValues): { topic: string } | { problem: string } {
    let topic = "";
    for (const part of this.#parts) {
      if (typeof part === "string") {
        topic += part;
        continue;
      }
      const value = values[part.name] ?? "";
      const problem = valueProblem(value);
      if (problem) {
        return {
          problem: `its ${part.name} ${JSON.stringify(value)} ${problem}, so topic "${this.template}" cannot be made from it; take {${part.name}} out of the topic, or fix the value at its source`,
        };
      }
      topic += value;
    }
    return { topic };
  }
}

function valueProblem(value: string): string | undefined {
  if (value === "") return "is empty (an empty topic level)";
  if (value.includes("/")) return 'holds "/" (it would add topic levels)';
  if (value.includes("+") || value.includes("#")) return "holds a wildcard (+ or #)";
  if (value.includes("\u0000")) return "holds a NUL character";
  return undefined;
}
