package cache

// SetS3PartSize sets the multipart part size of s (at least 5 MiB), so
// that tests upload in parts without objects of 16 MiB.
func SetS3PartSize(s *S3, n uint64) { s.partSize = n }
