import { environmentNameOf, parseCreateRequest } from '../../../lambdas/core/environments';
import { SETTING } from '../../../lambdas/core/settings';
import { validationErrorOf } from '../../support/outcome';

describe('POST /environments body validation', () => {
  const saved = { ...process.env };
  beforeEach(() => {
    process.env[SETTING.maxVcpusCeiling] = '64';
  });
  afterEach(() => {
    process.env = { ...saved };
  });

  it('fills in the defaults: the ceiling for maxVcpus, gpu on, scheduling off', () => {
    // act
    const request = parseCreateRequest({ name: 'alice' });
    // assess
    expect(request).toEqual({ name: 'alice', maxVcpus: 64, gpu: true, scheduling: false });
  });

  it('takes scheduling when asked for, and only as a boolean', () => {
    // act
    const request = parseCreateRequest({ name: 'alice', scheduling: true });
    const wrong = () => parseCreateRequest({ name: 'alice', scheduling: 'yes' });
    // assess
    expect(request.scheduling).toBe(true);
    expect(wrong).toThrow(expect.objectContaining({ name: 'ValidationError' }));
  });

  it.each([
    ['missing name', {}, [{ field: 'name', message: 'is required' }]],
    ['a name of the wrong type', { name: 5 }, [{ field: 'name', message: 'must be a string' }]],
    ['an upper-case name', { name: 'Alice' }, [{ field: 'name', message: expect.stringMatching(/^must be 3 to 32 characters: lower-case/) }]],
    ['a name ending in a hyphen', { name: 'alice-' }, [{ field: 'name', message: expect.stringMatching(/not ending with a hyphen/) }]],
    ['maxVcpus of the wrong type', { name: 'alice', maxVcpus: 'lots' }, [{ field: 'maxVcpus', message: 'must be a whole number' }]],
    ['fractional maxVcpus', { name: 'alice', maxVcpus: 1.5 }, [{ field: 'maxVcpus', message: 'must be a whole number' }]],
    ['zero maxVcpus', { name: 'alice', maxVcpus: 0 }, [{ field: 'maxVcpus', message: 'must be at least 1' }]],
    ['gpu of the wrong type', { name: 'alice', gpu: 'yes' }, [{ field: 'gpu', message: 'must be true or false' }]],
    ['an owner that is no ARN', { name: 'alice', owner: 'bob' }, [{ field: 'owner', message: 'must be an IAM user or role ARN' }]],
    ['a JSON array', ['alice'], [{ field: 'body', message: 'must be a JSON object' }]],
    ['null', null, [{ field: 'body', message: 'must be a JSON object' }]],
  ])('refuses %s, naming the field and the rule', (_case, body, errors) => {
    // act
    const error = validationErrorOf(() => parseCreateRequest(body));
    // assess
    expect(error.errors).toEqual(errors);
    expect(error.message).toMatch(/^The environment request is not valid: /);
  });

  it('lists every unknown field, and what is allowed', () => {
    // act
    const error = validationErrorOf(() => parseCreateRequest({ name: 'alice', color: 'red', size: 3 }));
    // assess
    expect(error.errors).toEqual([
      { field: 'color', message: 'is not accepted here (allowed: name, maxVcpus, gpu, owner)' },
      { field: 'size', message: 'is not accepted here (allowed: name, maxVcpus, gpu, owner)' },
    ]);
  });

  it('says what the ceiling is, read from the deployment setting', () => {
    // prepare
    process.env[SETTING.maxVcpusCeiling] = '32';
    // act
    const error = validationErrorOf(() => parseCreateRequest({ name: 'alice', maxVcpus: 33 }));
    // assess
    expect(error.errors).toEqual([{ field: 'maxVcpus', message: 'must be at most 32, the ceiling set for this deployment' }]);
    expect(parseCreateRequest({ name: 'alice', maxVcpus: 32 }).maxVcpus).toBe(32);
  });

  it('reports every offending field at once', () => {
    // act
    const error = validationErrorOf(() => parseCreateRequest({ name: 'A', maxVcpus: -1, gpu: 1, extra: true }));
    // assess
    expect(error.errors.map((item) => item.field).sort()).toEqual(['extra', 'gpu', 'maxVcpus', 'name']);
  });
});

describe('environment names in paths', () => {
  it.each(['al', 'Alice', 'alice-', '-alice', 'a'.repeat(33), 'alice_1', '../etc'])('refuses "%s"', (name) => {
    // act
    const error = validationErrorOf(() => environmentNameOf(name));
    // assess
    expect(error.errors).toEqual([{ field: 'name', message: expect.stringMatching(/^must be 3 to 32 characters/) }]);
  });

  it.each(['abc', 'alice', 'team-7-gpu', 'a'.repeat(32)])('accepts "%s"', (name) => {
    // act + assess
    expect(environmentNameOf(name)).toBe(name);
  });
});
