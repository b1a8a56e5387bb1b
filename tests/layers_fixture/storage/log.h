/* log.h -- fixture: the public header of storage. */
