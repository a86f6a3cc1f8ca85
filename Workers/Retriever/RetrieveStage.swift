import HumeWorker
