/** Runs in every test file (jest setupFilesAfterEnv): its temporary folders go once its tests are done. */
import { removeScratchDirs } from './scratch';

afterAll(removeScratchDirs);
