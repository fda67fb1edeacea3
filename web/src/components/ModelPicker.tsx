// Model and reasoning-effort selects fed by GET /api/models.
import { useEffect, useState } from 'preact/hooks';
import { useStore } from '../lib/store';
import { effortsOf, loadModels, models$ } from '../state';

const CUSTOM = '__custom__';

export interface ModelPickerProps {
  model: string;
  effort: string;
  onModel(id: string): void;
  onEffort(effort: string): void;
  /** Label of the empty choice ("" = use the default). */
  defaultLabel: string;
  /** The model the empty choice stands for (to list its efforts). */
  defaultModel: string;
  modelTestId: string;
  effortTestId: string;
  compact?: boolean;
}

export function ModelPicker(p: ModelPickerProps) {
  const list = useStore(models$);
  useEffect(loadModels, []);
  const models = list?.models ?? [];
  const effective = p.model || p.defaultModel;
  const { efforts, default: def } = effortsOf(list, effective);
  const known = new Set(models.map((m) => m.id));
  const extra = [list?.default, p.defaultModel].filter(
    (m, i, all): m is string => !!m && !known.has(m) && all.indexOf(m) === i,
  );
  // "Other…": any id the server accepts (scripted:<path>, openai-compatible:<name>, …).
  const listed = p.model === '' || known.has(p.model) || extra.includes(p.model);
  const [custom, setCustom] = useState(!listed);
  return (
    <>
      <label class={p.compact ? 'compact-field' : 'field'}>
        {!p.compact && <span>Model</span>}
        <select
          data-testid={p.modelTestId}
          aria-label="Model"
          value={custom ? CUSTOM : p.model}
          onChange={(e) => {
            const v = (e.target as HTMLSelectElement).value;
            // A wildcard entry (openai-compatible:*) needs the model's name: edit it as text.
            const wildcard = v.endsWith(':*');
            setCustom(v === CUSTOM || wildcard);
            p.onModel(v === CUSTOM ? '' : wildcard ? v.slice(0, -1) : v);
            p.onEffort('');
          }}
        >
          <option value="">{p.defaultLabel}</option>
          {extra.map((m) => (
            <option key={m} value={m}>
              {m}
            </option>
          ))}
          {models.map((m) => (
            <option key={m.id} value={m.id} disabled={!m.available}>
              {m.label}
              {m.available ? '' : ' (not configured)'}
            </option>
          ))}
          <option value={CUSTOM}>Other model id…</option>
        </select>
      </label>
      {custom && (
        <label class={p.compact ? 'compact-field' : 'field'}>
          {!p.compact && <span>Model id</span>}
          <input
            data-testid={`${p.modelTestId}-custom`}
            aria-label="Model id"
            placeholder="provider:model"
            value={p.model}
            onInput={(e) => p.onModel((e.target as HTMLInputElement).value.trim())}
          />
        </label>
      )}
      <label class={p.compact ? 'compact-field' : 'field'}>
        {!p.compact && <span>Reasoning effort</span>}
        <select
          data-testid={p.effortTestId}
          aria-label="Reasoning effort"
          value={p.effort}
          onChange={(e) => p.onEffort((e.target as HTMLSelectElement).value)}
        >
          <option value="">{def ? `Default (${def})` : 'Default'}</option>
          {efforts.map((x) => (
            <option key={x} value={x}>
              {x}
            </option>
          ))}
        </select>
      </label>
    </>
  );
}
