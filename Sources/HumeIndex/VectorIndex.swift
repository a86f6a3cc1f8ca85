import HumeCore
