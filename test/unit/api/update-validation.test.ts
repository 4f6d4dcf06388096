import { parseCreateRequest, parseUpdateRequest } from '../../../lambdas/core/environments';
import { SETTING } from '../../../lambdas/core/settings';
import { validationErrorOf } from '../../support/outcome';

describe('PATCH /environments/{name} body validation', () => {
  const saved = { ...process.env };
  beforeEach(() => {
    process.env[SETTING.maxVcpusCeiling] = '64';
  });
  afterEach(() => {
    process.env = { ...saved };
  });

  it('takes any one of the fields, filling in nothing: a field left out keeps its value', () => {
    // act
    const requests = [{ maxVcpus: 8 }, { gpu: false }, { scheduling: true }, { idleExpiryExempt: true }].map(parseUpdateRequest);
    // assess
    expect(requests).toEqual([{ maxVcpus: 8 }, { gpu: false }, { scheduling: true }, { idleExpiryExempt: true }]);
  });

  it('refuses an empty body, naming the fields it may hold', () => {
    // act
    const error = validationErrorOf(() => parseUpdateRequest({}));
    // assess
    expect(error.errors).toEqual([{ field: 'body', message: 'must name at least one of maxVcpus, gpu, scheduling, idleExpiryExempt' }]);
  });

  it('refuses unknown fields, the name among them, listing what is allowed', () => {
    // act
    const error = validationErrorOf(() => parseUpdateRequest({ maxVcpus: 8, name: 'other', owner: 'x' }));
    // assess
    expect(error.errors.map((entry) => entry.field).sort()).toEqual(['name', 'owner']);
    expect(error.errors[0]!.message).toBe('is not accepted here (allowed: maxVcpus, gpu, scheduling, idleExpiryExempt)');
  });

  it.each([65, 0, 2.5, '8', null])('refuses maxVcpus %p with the message a create gives', (maxVcpus) => {
    // act
    const update = validationErrorOf(() => parseUpdateRequest({ maxVcpus }));
    const create = validationErrorOf(() => parseCreateRequest({ name: 'alice', maxVcpus }));
    // assess
    expect(update.errors).toEqual(create.errors);
  });

  it.each(['gpu', 'scheduling', 'idleExpiryExempt'])('refuses a %s that is not a boolean', (field) => {
    // act
    const error = validationErrorOf(() => parseUpdateRequest({ [field]: 'yes' }));
    // assess
    expect(error.errors).toEqual([{ field, message: 'must be true or false' }]);
  });

  it.each([[null], [[{ maxVcpus: 8 }]], ['maxVcpus=8']])('refuses a body that is not a JSON object: %p', (body) => {
    // act
    const error = validationErrorOf(() => parseUpdateRequest(body));
    // assess
    expect(error.errors).toEqual([{ field: 'body', message: 'must be a JSON object' }]);
  });
});
