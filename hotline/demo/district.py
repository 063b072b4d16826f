"""The demo district: its departments, streets, categories, routing rules and people, and the
words its citizens, agents and departments use (demo data, not the engine's texts)."""

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from hotline import directory
from hotline.models import User
from hotline.security import hash_password
from hotline.workflow.engine import Actor

# The demo users' well-known password: it meets the password policy, and they need not change
# it (the demo is a two-command quick start, not production).
DEMO_PASSWORD = "Hotline-12345"
WORKFLOW = "default"
# The users whose API tokens the loader prints.
TOKEN_USERS = ("admin", "agent1", "supervisor1", "cgj.handler", "city12345", "haochaping")
# The outside platforms' system accounts (互联互通), each named after its source.
INTEGRATIONS = {"city12345": "市12345平台", "haochaping": "政务服务好差评系统"}

# --- the district ---------------------------------------------------------------------------

CITY = "江州市"
DISTRICT = "青山区"
# Its administrative region code (行政区划代码), made up: no real district has it.
REGION_CODE = "439901000000"

# Functional departments: code, official name, short name.
DEPARTMENTS = [
    ("zjj", "青山区住房和城乡建设局", "区住建局"),
    ("cgj", "青山区城市管理执法局", "区城管局"),
    ("scjg", "青山区市场监督管理局", "区市场监管局"),
    ("sthj", "江州市生态环境局青山分局", "生态环境分局"),
    ("rsj", "青山区人力资源和社会保障局", "区人社局"),
    ("mzj", "青山区民政局", "区民政局"),
    ("jyj", "青山区教育局", "区教育局"),
    ("wjw", "青山区卫生健康委员会", "区卫健委"),
    ("ybj", "青山区医疗保障局", "区医保局"),
    ("swj", "青山区水务局", "区水务局"),
    ("gsgs", "江州青山供水有限公司", "供水公司"),
    ("grb", "青山区供热管理办公室", "区供热办"),
    ("rqgs", "江州青山燃气有限公司", "燃气公司"),
    ("jtj", "青山区交通运输局", "区交通运输局"),
    ("jjdd", "江州市公安局交通管理局青山大队", "交警青山大队"),
    ("zrzy", "江州市自然资源和规划局青山分局", "自然资源分局"),
    ("yjj", "青山区应急管理局", "区应急管理局"),
    ("wlj", "青山区文化和旅游局", "区文旅局"),
    ("spj", "青山区行政审批局", "区行政审批局"),
]

# Streets (街道): office code, name, centre (lat lng), roads; then, indented, the communities.
STREETS_TEXT = """
bjjd 滨江街道 30.6021 114.3123 滨江大道 沿江路 江汉路
  江畔社区 滨江花园社区 临江社区 码头社区 观澜社区 渔湾社区
qsjd 青山街道 30.6312 114.3854 青山路 和平大道 建设二路
  青山社区 红钢城社区 钢花社区 建设社区 工人村社区 冶金社区 和平社区
tyjd 桃源街道 30.6145 114.4012 桃源路 杏林大道 花溪路
  桃源社区 桃花岛社区 杏林社区 梅园社区 柳岸社区
chjd 翠湖街道 30.5893 114.3721 翠湖路 湖光大道 碧水街
  翠湖社区 湖光社区 荷塘社区 碧水社区 湖滨社区 南湖社区 映月社区 听涛社区
lqjd 龙泉街道 30.6478 114.3402 龙泉大道 盘龙路 泉水巷
  龙泉社区 龙井社区 泉水社区 盘龙社区 卧龙社区
jsjd 金沙街道 30.5764 114.3355 金沙路 金桥大道 沙湖西路
  金沙社区 银滩社区 金桥社区 沙湖社区 金色家园社区 财富社区
wjjd 望江街道 30.6620 114.4103 望江路 新港大道 远帆街
  望江社区 江景社区 远帆社区 新港社区
bljd 白鹭街道 30.5602 114.4187 白鹭大道 长堤路 湿地公园路
  白鹭社区 鹭岛社区 芦苇社区 湿地社区 秋水社区 长堤社区
dhjd 东湖街道 30.5548 114.3712 东湖路 梨园大道 磨山路
  东湖社区 东亭社区 珞珈社区 梨园社区 水果湖社区 磨山社区 落雁社区
"""

ESTATE_SUFFIXES = ["花园", "小区", "家园", "新村", "公寓", "雅苑"]

# The category tree (问题分类), indented two spaces a level: code, name, default department.
# A leaf adds its weights "problems/consultations" and optional flags (outage, danger,
# heating, summer); under it, "P title｜detail" is a problem citizens report and
# "Q title｜detail" a question they ask.
CATEGORY_TEXT = """
CX 城乡建设 zjj
  CX01 物业管理 zjj
    CX0101 物业服务 zjj 8/2
      P 小区物业服务不到位｜小区物业长期不打扫楼道，垃圾堆放多日无人清理，绿化无人养护，物业费却照收不误
      P 物业拒不维修单元门禁｜单元门禁损坏两个多月，多次找物业报修均以没有维修资金为由推诿
      Q 咨询更换物业公司的程序｜小区业主想更换物业公司，需要经过哪些程序，业主大会如何召开
    CX0102 物业收费 zjj 3/2
      P 物业擅自上涨物业费｜小区物业未经业主大会同意，自行将物业费从每平方米1.2元上调至1.8元
      P 物业以停水停电催缴物业费｜物业公司以欠缴物业费为由，对部分住户限制用水用电
      Q 咨询物业费收费标准｜本区普通住宅物业服务收费的政府指导价标准是多少
    CX0103 电梯故障 scjg 4/0 danger
      P 小区电梯频繁故障｜小区电梯本月已停运四次，其中一次困人近半小时，居民担心乘梯安全
      P 电梯检验合格证过期｜电梯轿厢内张贴的检验合格证已过期半年，物业未组织定期检验
    CX0104 维修资金 zjj 1/2
      P 申请使用维修资金迟迟未批｜楼顶漏水需要维修，申请动用住宅专项维修资金已两个月仍未审批
      Q 咨询住宅专项维修资金使用流程｜屋面防水维修申请使用住宅专项维修资金需要什么条件和流程
  CX02 房屋管理 zjj
    CX0201 房屋质量 zjj 2/0 summer
      P 新房墙体开裂渗水｜去年交付的新房多处墙体开裂、窗边渗水，开发商一再拖延维修
      P 顶楼住户房屋漏水｜连续降雨后顶楼卧室天花板漏水严重，墙皮大面积脱落
    CX0202 商品房交付 zjj 2/1
      P 楼盘逾期交房｜所购楼盘合同约定6月底交房，至今未交付，开发商未给出明确时间
      Q 咨询商品房网签备案查询｜如何查询所购商品房的网签备案信息
    CX0203 老旧小区改造 zjj 2/2
      P 老旧小区改造施工影响出行｜小区改造施工挖开道路后长期未恢复，老人出行十分困难
      Q 咨询老旧小区改造和加装电梯｜本小区是否纳入今年老旧小区改造计划，加装电梯如何申请
    CX0204 房屋租赁 zjj 1/2
      P 中介公司克扣租房押金｜租房合同到期退租，中介公司以各种理由拒不退还押金
      Q 咨询公租房申请条件｜本区公共租赁住房的申请条件和所需材料有哪些
  CX03 违法建设 cgj
    CX0301 违章搭建 cgj 4/0
      P 楼顶违章搭建彩钢房｜顶楼住户在楼顶平台搭建彩钢房，影响楼栋防水和消防安全
      P 一楼住户私自扩建院墙｜一楼住户私自扩建院墙并搭建雨棚，侵占小区公共绿地
    CX0302 占用公共空间 cgj 2/0
      P 楼道堆放杂物堵塞通道｜楼道内长期堆放杂物并停放电动车，堵塞消防通道
      P 私设地锁占用公共车位｜小区内有人私自安装地锁，长期占用公共停车位
CG 城市管理 cgj
  CG01 市容环卫 cgj
    CG0101 占道经营 cgj 4/0 summer
      P 路边摊贩占道经营｜路口早晚有大量流动摊贩占道经营，造成交通拥堵，收摊后垃圾遍地
      P 门店出店经营占用人行道｜沿街门店将货物摆到人行道上经营，行人只能走机动车道
    CG0102 垃圾清运 cgj 4/1
      P 垃圾桶满溢无人清运｜小区门口垃圾桶满溢，连续三天无人清运，异味严重
      P 建筑垃圾随意倾倒｜路边空地上被人倾倒大量装修垃圾，已经堆成小山
      Q 咨询装修垃圾清运办法｜家庭装修产生的建筑垃圾如何申请清运，收费标准是多少
    CG0103 垃圾分类 cgj 1/2
      P 小区未落实垃圾分类｜小区的垃圾分类桶形同虚设，清运时混装混运
      Q 咨询垃圾分类投放规定｜厨余垃圾和其他垃圾如何区分，定时定点投放的时间是什么
    CG0104 户外广告 cgj 1/0 danger
      P 户外广告牌松动存在隐患｜临街楼顶广告牌支架锈蚀松动，大风天摇晃，存在坠落隐患
  CG02 市政设施 cgj
    CG0201 道路破损 cgj 3/0
      P 路面坑洼积水｜路面出现多处坑洼，下雨后积水严重，已有电动车在此摔倒
      P 人行道地砖松动破损｜人行道地砖大面积松动翘起，雨天一踩就溅水，老人容易绊倒
    CG0202 路灯故障 cgj 2/0
      P 路灯不亮｜道路沿线一排路灯已经一周不亮，夜间行走很不安全
    CG0203 井盖缺失 cgj 1/0 danger
      P 窨井盖缺失｜人行道上一处窨井盖缺失，仅用树枝遮挡，极易发生行人跌落
    CG0204 园林绿化 cgj 2/1
      P 行道树枝叶遮挡信号灯｜行道树枝叶过密，遮挡交通信号灯和低层住户采光，需要修剪
      P 公共绿地被毁种菜｜小区公共绿地被部分居民开垦种菜并使用粪肥，气味难闻
      Q 咨询树木修剪审批｜小区内一棵大树影响住户采光，修剪或移植需要办理什么手续
HB 环境保护 sthj
  HB01 噪声污染 sthj
    HB0101 施工噪声 cgj 5/0 summer
      P 夜间施工噪声扰民｜工地每天夜间十一点后仍在施工，机械噪声很大，严重影响休息
      P 渣土车夜间作业扰民｜附近工地渣土车整夜进出，鸣笛和装卸声不断
    HB0102 商业噪声 sthj 2/0 summer
      P 商铺音响噪声扰民｜沿街商铺整天用大功率音响促销，噪声很大
      P 烧烤店深夜噪声扰民｜烧烤店营业到凌晨两三点，顾客喧哗，影响居民休息
    HB0103 社会生活噪声 sthj 2/0 summer
      P 广场舞音响声音过大｜小区广场每晚跳广场舞，音响声音过大，持续到晚上十点以后
  HB02 大气污染 sthj
    HB0201 餐饮油烟 sthj 3/0
      P 餐馆油烟直排扰民｜楼下餐馆未安装油烟净化设备，油烟直排进入居民家中
    HB0202 工业废气 sthj 1/0
      P 工厂夜间排放刺鼻气体｜附近工厂夜间排放带有刺鼻气味的废气，周边居民不敢开窗
    HB0203 露天焚烧 cgj 1/0
      P 有人露天焚烧垃圾｜空地上有人露天焚烧垃圾和废旧轮胎，浓烟很大
  HB03 水体污染 swj 1/0 summer
    P 港渠水体发黑发臭｜港渠水体发黑发臭，有排污口向渠内排放污水
SC 市场监管 scjg
  SC01 食品安全 scjg
    SC0101 餐饮卫生 scjg 3/0
      P 餐馆卫生条件差｜在餐馆就餐后出现腹泻呕吐，怀疑食材不新鲜，后厨卫生条件差
      P 外卖餐品吃出异物｜通过外卖平台点餐，在饭菜中吃出异物，商家拒绝处理
    SC0102 过期食品 scjg 2/0
      P 超市销售过期食品｜在超市购买的牛奶已过保质期，超市仍在货架上销售
    SC0103 无证经营 scjg 1/0
      P 无证小作坊加工食品｜居民楼内有人开设无证小作坊加工糕点对外销售，卫生条件堪忧
  SC02 消费维权 scjg
    SC0201 预付卡退费 scjg 4/1
      P 健身房关门预付卡无法退费｜办理的健身卡还有大半年未使用，健身房突然关门，无法联系商家退费
      P 培训机构拒不退还预付费｜在培训机构预交一年课时费，机构经营异常，拒不退还剩余费用
      Q 咨询预付卡纠纷维权途径｜商家停业后预付卡余额如何追讨
    SC0202 商品质量 scjg 2/0 summer
      P 购买家电出现质量问题｜新买的空调使用不到一个月就不制冷，商家拒绝退换
    SC0203 价格欺诈 scjg 2/0
      P 商家虚构原价促销｜商场促销先涨价后打折，标示的原价与实际不符
LD 劳动社保 rsj
  LD01 劳动关系 rsj
    LD0101 欠薪 rsj 5/1
      P 公司拖欠工资｜所在公司已拖欠员工三个月工资，涉及二十余人，老板拒不见面
      P 工地拖欠农民工工资｜在工地务工，项目完工后包工头拖欠工资至今未结清
      Q 咨询欠薪如何申请劳动仲裁｜单位拖欠工资如何申请劳动仲裁，需要准备哪些材料
    LD0102 劳动合同 rsj 2/2
      P 单位不签劳动合同｜入职半年，单位一直未签订劳动合同，也未缴纳社会保险
      Q 咨询解除劳动合同经济补偿｜单位提出解除劳动合同时，经济补偿金如何计算
  LD02 社会保险 rsj
    LD0201 社保缴费 rsj 1/5
      P 单位未足额缴纳社保｜单位按最低基数缴纳社保，与实际工资严重不符
      Q 咨询灵活就业人员社保缴费｜灵活就业人员如何参加养老保险，缴费基数如何选择
      Q 咨询社保关系转移接续｜从外地回本区工作，养老保险关系转移接续如何办理
    LD0202 养老金 rsj 0/3
      Q 咨询退休手续办理｜即将到达退休年龄，退休手续在哪里办理，需要哪些材料
      Q 咨询养老金调整到账时间｜今年基本养老金调整后何时到账
    LD0203 失业保险 rsj 0/2
      Q 咨询失业保险金申领｜失业后如何申领失业保险金，可以领取多长时间
  LD03 就业创业 rsj 0/2
    Q 咨询创业担保贷款｜个人创业担保贷款的申请条件和额度是多少
YL 医疗卫生 wjw
  YL01 医疗服务 wjw 2/2
    P 社区卫生服务中心服务态度差｜在社区卫生服务中心就诊时医生态度生硬，挂号排队时间过长
    Q 咨询家庭医生签约｜如何与社区卫生服务中心签约家庭医生
  YL02 疫苗接种 wjw 0/2
    Q 咨询儿童疫苗接种｜儿童接种疫苗如何预约，接种门诊在哪里
  YL03 医疗保障 ybj
    YL0301 医保报销 ybj 1/4
      P 医保报销款迟迟未到账｜提交异地就医报销材料已三个月，报销款仍未到账
      Q 咨询异地就医备案｜异地就医备案通过什么渠道办理，报销比例是多少
    YL0302 医保参保 ybj 0/3
      Q 咨询城乡居民医保缴费｜城乡居民医疗保险今年的缴费标准和截止时间
JY 教育 jyj
  JY01 入学政策 jyj 1/5 summer
    P 适龄儿童未被划片学校录取｜孩子户籍在学区范围内，却未被划片学校录取，被调剂到较远学校
    Q 咨询小学入学报名｜今年小学一年级入学报名时间、所需材料和学区划分
  JY02 校外培训 jyj 2/1
    P 培训机构违规开展学科培训｜有培训机构在居民楼内违规开展学科类培训
    Q 咨询校外培训机构资质查询｜如何查询校外培训机构是否取得办学许可
  JY03 学校管理 jyj 2/1
    P 学校门口接送车辆乱停｜学校上下学时段门口车辆乱停乱放，学生过马路很危险
    Q 咨询课后服务收费｜学校课后延时服务的收费标准是多少
MZ 民政服务 mzj
  MZ01 低保救助 mzj 1/3
    P 低保申请久拖未办｜家庭困难申请低保已两个多月，一直没有答复
    Q 咨询最低生活保障申请条件｜申请最低生活保障的条件和办理流程
  MZ02 养老服务 mzj 1/3
    P 养老院护理不到位｜老人入住的养老院护理不到位，老人身上出现压疮
    Q 咨询高龄津贴申领｜八十周岁以上老人高龄津贴如何申领
  MZ03 残疾人服务 mzj 0/1
    Q 咨询残疾人两项补贴｜困难残疾人生活补贴和重度残疾人护理补贴的申请条件
GS 供水 gsgs
  GS01 停水 gsgs 5/1 outage summer
    P 小区突然停水｜小区从今天早上开始突然停水，事先未见任何停水通知，居民生活受到影响
    P 高层住户水压不足｜高层住户白天水压不足，热水器无法正常点火
    Q 咨询计划停水恢复时间｜看到停水通知，具体什么时候恢复供水
  GS02 水质问题 gsgs 2/0
    P 自来水发黄有异味｜家中自来水发黄浑浊并有异味，不敢饮用
  GS03 水费 gsgs 1/2
    P 水费异常偏高｜本月水费比平时高出三倍，家中并未发现漏水
    Q 咨询阶梯水价标准｜居民生活用水阶梯水价如何计费
  GS04 供水管道漏水 gsgs 2/0 outage
    P 路边供水管道爆裂｜路边供水管道爆裂，大量自来水涌出路面
GR 供热 grb
  GR01 供暖不热 grb 6/0 heating outage
    P 暖气不热｜供暖开始后家中暖气一直不热，室温只有十四五度
    P 小区供暖温度不达标｜小区多户居民暖气温度不达标，老人孩子受冻
  GR02 供热收费 grb 1/2 heating
    P 供热公司多收取暖费｜供热公司将阁楼面积计入收费面积，多收取暖费
    Q 咨询供暖报停｜家中今年无人居住，如何办理供暖报停
  GR03 暖气漏水 grb 2/0 heating outage
    P 暖气管道漏水｜家中暖气管道接口漏水，已经渗到楼下住户
JT 交通出行 jtj
  JT01 公共交通 jtj
    JT0101 公交服务 jtj 2/2
      P 公交车到站不停｜公交车多次到站不停，候车乘客无法上车
      Q 咨询公交线路调整｜近期公交线路调整后的首末班时间
    JT0102 出租网约车 jtj 2/0
      P 出租车绕路拒不打表｜乘坐出租车时司机故意绕路并拒绝打表
  JT02 道路交通 jjdd
    JT0201 违章停车 jjdd 4/0
      P 车辆乱停堵塞道路｜道路两侧车辆长期乱停乱放，消防车和救护车无法通行
    JT0202 交通信号 jjdd 1/0
      P 红绿灯时长设置不合理｜路口直行绿灯时间太短，高峰期车辆排起长队
    JT0203 非机动车停放 cgj 1/0
      P 共享单车乱停放｜地铁站出口共享单车大量堆积，占用盲道和人行道
ZY 自然资源 zrzy
  ZY01 不动产登记 zrzy 1/3
    P 房产证迟迟办不下来｜交房已满三年，因开发商原因至今无法办理不动产权证
    Q 咨询不动产登记办理材料｜二手房过户办理不动产登记需要准备哪些材料
  ZY02 规划建设 zrzy 1/1
    P 新建高楼遮挡采光｜小区南侧新建高楼距离过近，严重遮挡低层住户采光
    Q 咨询地块规划公示｜周边地块的规划用途和规划公示在哪里查询
AQ 安全生产 yjj
  AQ01 安全隐患 yjj 2/0 danger
    P 违规存放液化气罐｜居民楼底商违规存放大量液化气罐，存在重大安全隐患
  AQ02 燃气安全 rqgs 2/1 danger outage
    P 楼道内有燃气味｜单元楼道内有明显燃气味，怀疑燃气管道泄漏
    Q 咨询燃气开户通气｜新房入住，燃气开户通气如何办理
  AQ03 消防通道 yjj 2/0
    P 消防通道被占用｜小区消防通道被车辆长期占用，物业不管不问
WL 文化旅游 wlj
  WL01 旅游投诉 wlj 1/1 summer
    P 旅行社强制购物｜参加旅行社组织的一日游，被导游强制带到购物店消费
    Q 咨询景区门票优惠政策｜区内景区对老年人和学生的门票优惠政策
  WL02 文化市场 wlj 1/1
    P 网吧接纳未成年人｜附近网吧允许未成年人进入上网
    Q 咨询图书馆开放时间｜区图书馆的开放时间和借阅证办理方式
ZW 政务服务 spj
  ZW01 办事服务 spj 1/3
    P 办事多次被要求补交材料｜在政务服务中心办理营业执照变更，多次被要求补交材料
    Q 咨询个体工商户营业执照办理｜开办个体工商户营业执照的流程和所需材料
"""

# Routing rules on top of the category defaults. Street rules send a leaf to the street's
# office (属地管理): leaf, then the streets (all when none are named).
STREET_RULES = [
    ("CX0301", []),
    ("CX0302", []),
    ("CG0101", ["bjjd", "qsjd", "chjd", "jsjd", "dhjd"]),
    ("CG0102", ["tyjd", "lqjd", "wjjd", "bljd"]),
    ("HB0103", ["chjd", "dhjd", "qsjd"]),
    ("AQ03", ["bljd", "wjjd"]),
]
# Community rules (leaf, street, community, department): old estates without property
# management are looked after by the street; two estates' secondary water supply is the
# water bureau's.
COMMUNITY_RULES = [
    ("CX0101", "qsjd", "工人村社区", "qsjd"),
    ("CX0101", "qsjd", "冶金社区", "qsjd"),
    ("CX0101", "bjjd", "码头社区", "bjjd"),
    ("GS01", "chjd", "映月社区", "swj"),
    ("GS01", "lqjd", "卧龙社区", "swj"),
]

TYPE_WEIGHTS = [
    ("consultation", 42),
    ("complaint", 26),
    ("help", 12),
    ("report", 8),
    ("suggestion", 7),
    ("praise", 5),
]
CHANNEL_WEIGHTS = [("phone", 68), ("wechat", 11), ("app", 7), ("web", 6), ("city", 5), ("email", 1), ("api", 2)]
# Share of each type the agent answers at once (直接办结) instead of dispatching.
ANSWER_SHARE = {"consultation": 0.62, "praise": 0.5, "suggestion": 0.12, "help": 0.06, "complaint": 0.02}

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国志文斌宇浩凯俊峰琳雪梅晨欣悦子涵雨轩佳怡思远"
PHONE_PREFIXES = ("13", "15", "17", "18", "19", "13", "18", "15")

CONTENT = {
    "complaint": "{caller}来电反映：{place}{detail}。诉求：请相关部门尽快核实处理。",
    "help": "{caller}来电求助：{place}{detail}，希望相关部门帮忙协调解决。",
    "report": "{caller}来电举报：{place}{detail}，请求相关部门依法查处。",
    "consultation": "{caller}来电咨询：{detail}？来电人居住在{place}。",
    "suggestion": "{caller}来电建议：{place}一带{title}的情况时有发生，建议相关部门加强日常巡查和监管，"
    "建立长效管理机制。",
    "praise": "{caller}来电表扬：此前反映{place}{title}的问题，{dept}工作人员接单后及时到现场处理，态度热情、"
    "办事高效，问题得到解决，特来电致谢。",
}
ANSWERS = [
    "已根据知识库向来电人解答{leaf}的相关政策和办理流程，告知所需材料及咨询电话，来电人表示清楚。",
    "已告知来电人{leaf}事项可通过“江州政务服务”网站或到区政务服务中心窗口办理，来电人表示认可。",
    "已向来电人解释{leaf}的有关规定，并提供主管部门办公地址和工作时间，来电人无其他诉求。",
]
PRAISE_ANSWER = "已记录来电人的表扬意见，将转达{dept}，感谢来电人对12345热线工作的支持。"
RESULTS = [
    "经{dept}工作人员现场核实，来电人反映的问题属实。已责令责任方立即整改，目前问题已解决，并已电话告知来电人处理结果。",
    "接单后我单位立即安排人员到现场查看，会同{community}及物业服务企业共同处理，问题已得到解决，后续将加强巡查。"
    "已与来电人沟通，来电人表示认可。",
    "经核查，该问题涉及历史遗留原因，我单位已制定整改方案，限期完成整改；已向来电人做好解释工作。",
    "经调查，来电人反映情况部分属实，已对相关经营者进行约谈并下达责令改正通知书，将跟踪整改落实情况。",
]
CONSULT_RESULT = "已电话联系来电人，就其咨询的{leaf}问题进行详细解答，告知办理流程、所需材料和办理地点。"
RETURN_REASONS = [
    ("territory", "经核实，该地址不在我单位管辖范围内，应由属地街道办理", "属地管理职责分工文件"),
    ("ownership", "该事项不属于我单位法定职责，请中心重新研判", "本单位“三定”方案"),
    ("overlap", "该问题涉及多个部门职能交叉，建议由牵头部门办理", "区政府职责分工意见"),
    ("other", "来电人提供的地址信息不详，多次联系未果，无法核实", None),
]
REJECT_RETURN = "经中心审核，该事项属于你单位职责范围，退单理由不成立，请按时办理。"
REDISPATCH = "退单理由成立，改派至{dept}办理。"
EXTENSION_REASONS = [
    "该问题需协调多个单位共同处理，申请延期办理。",
    "整改涉及施工，需要一定工期，申请延期办理。",
    "需等待相关检测结果出具后方能答复，申请延期。",
]
REJECT_EXTENSION = "该问题应在规定时限内办结，不同意延期。"
SUSPENSION_REASONS = [
    "当事双方已进入诉讼程序，申请挂起，待法院判决后继续办理。",
    "维修需在供暖季结束后施工，申请挂起。",
    "来电人外出暂时无法配合现场核实，申请挂起。",
]
REJECT_SUSPENSION = "挂起理由不充分，请继续办理。"
RESUME_REASON = "挂起事由已消除，恢复办理。"
RECTIFICATION_VERIFIED = "已与来电人联系核实，对办理中存在的问题进行了梳理。"
RECTIFICATION_MEASURES = [
    "已重新安排人员现场处理，问题已整改到位，并向来电人致歉。",
    "已对承办人员进行批评教育，完善了工作流程，加强日常巡查。",
    "该诉求受政策限制暂无法解决，已当面向来电人做好解释说明。",
]
REJECT_REPLY = "答复内容过于简单，未说明具体处理措施和结果，请补充完善后重新答复。"
REHANDLE = "来电人对处理结果不满意，反映问题未实际解决，经研判属承办单位原因，请重新办理。"
DISSATISFIED_CLOSE = "来电人不满意，但诉求超出政策规定，已做好解释说明，予以归档。"
CANCEL_REASONS = ["来电人表示问题已自行解决，申请撤销。", "重复录入，予以撤销。", "无效来电，予以撤销。"]
MERGE_REASON = "重复诉求，并入主工单办理。"
SUPERVISION_ANSWERS = [
    "已收到督办单，单位负责人已召集相关科室研究，明确专人负责，将于近日办结并答复来电人。",
    "已督促承办科室加快办理，现场整改正在进行，预计三个工作日内完成。",
    "已安排分管领导牵头协调，问题已基本解决，将尽快提交办理结果。",
]
COMMENTS = {
    5: "处理很及时，非常满意。",
    4: "满意，谢谢。",
    3: "基本满意，希望加强日常管理。",
    2: "问题没有彻底解决。",
    1: "没有人联系我，问题依然存在。",
}
# The communities (社区) of each street that have their residents' committee (居委会) in the
# directory, as departments under their street office (二级派单): the first few of each street.
COMMUNITY_OFFICES_PER_STREET = 3

RATINGS = [5, 4, 3, 2, 1]
RATING_WEIGHTS = [52, 24, 11, 7, 6]


@dataclass(frozen=True)
class Street:
    code: str
    name: str
    lat: float
    lng: float
    roads: tuple[str, ...]
    communities: tuple[str, ...]


@dataclass(frozen=True)
class Leaf:
    """A leaf of the category tree, with what citizens say about it."""

    code: str
    name: str
    department: str
    problem_weight: float  # complaints, requests for help, reports, suggestions, praise
    question_weight: float  # consultations
    problems: tuple[tuple[str, str], ...]  # (title, detail)
    questions: tuple[tuple[str, str], ...]
    flags: frozenset[str]


def _parse_streets(text: str) -> list[Street]:
    lines = text.strip("\n").splitlines()
    streets = []
    for head, communities in zip(lines[::2], lines[1::2], strict=True):
        code, name, lat, lng, *roads = head.split()
        streets.append(Street(code, name, float(lat), float(lng), tuple(roads), tuple(communities.split())))
    return streets


def _parse_categories(text: str) -> tuple[list[tuple[str, str, str | None, str]], list[Leaf]]:
    """The nodes of CATEGORY_TEXT in order (code, name, parent code, department), and its leaves."""
    nodes: list[tuple[str, str, str | None, str]] = []
    leaves: list[list] = []  # code, name, department, weights, problems, questions, flags
    path: list[str] = []
    for line in text.strip("\n").splitlines():
        depth = (len(line) - len(line.lstrip(" "))) // 2
        kind, _, rest = line.strip().partition(" ")
        if kind in ("P", "Q"):
            title, detail = rest.split("｜")
            leaves[-1][4 if kind == "P" else 5].append((title, detail))
            continue
        code, name, department, *more = line.split()
        del path[depth:]
        nodes.append((code, name, path[-1] if path else None, department))
        path.append(code)
        if more:
            weights = tuple(float(w) for w in more[0].split("/"))
            leaves.append([code, name, department, weights, [], [], frozenset(more[1:])])
    return nodes, [
        Leaf(code, name, dept, wp, wq, tuple(problems), tuple(questions), flags)
        for code, name, dept, (wp, wq), problems, questions, flags in leaves
    ]


STREETS = _parse_streets(STREETS_TEXT)
CATEGORY_NODES, LEAVES = _parse_categories(CATEGORY_TEXT)


def org_code(number: int, name: str) -> str:
    """A made-up organisation code (统一社会信用代码) for the demo's `number`th department, with
    a valid check character: a government body's (11…MB) or, for a company, an enterprise's (91…MA)."""
    kind, series = ("91", "MA") if name.endswith("公司") else ("11", "MB")
    first17 = f"{kind}{REGION_CODE[:6]}{series}{number:07d}"
    return first17 + directory.org_code_check(first17)


def community_offices() -> list[tuple[str, str, str, str]]:
    """The demo's community offices: (code, name, short name, street office code); the code is
    the street's and the community's place in its list (bjjd01)."""
    return [
        (f"{s.code}{i:02d}", f"{community}居民委员会", community, s.code)
        for s in STREETS
        for i, community in enumerate(s.communities[:COMMUNITY_OFFICES_PER_STREET], start=1)
    ]


def demo_codes() -> list[str]:
    """The department codes of the demo district: the bureaus, then the street offices."""
    return [code for code, _, _ in DEPARTMENTS] + [street.code for street in STREETS]


# --- the directory --------------------------------------------------------------------------


@dataclass
class Place:
    street_code: str
    street: str
    community: str
    estates: list[str]
    roads: tuple[str, ...]
    lat: float
    lng: float


@dataclass
class Directory:
    departments: dict[str, tuple[int, str, str]]  # code -> (id, name, short name), the communities' too
    codes: dict[int, str]  # id -> code
    leaf_ids: list[int]  # category id of each leaf of LEAVES
    places: list[Place]
    routes: list[list[tuple[str, str]]]  # [leaf][place] -> (department code, routed_by)
    rules: int
    handlers: dict[int, Actor]
    leaders: dict[int, Actor]
    agents: list[Actor]
    supervisors: list[Actor]
    # The merged line (一个号码) of each leaf of LEAVES, None for 12345's (hotline.demo.calls).
    leaf_lines: list[str | None] = field(default_factory=list)
    default_line: str = "12345"


def build_directory(session: Session, runtime, now: datetime, rng: random.Random) -> Directory:
    """The district's settings, departments, categories, routing rules and users, through
    hotline.directory."""
    directory.set_district(session, name=DISTRICT, region_code=REGION_CODE, now=now)
    departments: dict[str, tuple[int, str, str]] = {}
    offices = [(s.code, f"{DISTRICT}{s.name}办事处", f"{s.name}办") for s in STREETS]
    for number, (code, name, short) in enumerate(DEPARTMENTS + offices, start=1):
        dept = directory.create_department(session, code=code, name=name, org_code=org_code(number, name), now=now)
        departments[code] = (dept.id, name, short)
    for code, name, short, street in community_offices():
        dept = directory.create_department(session, code=code, name=name, parent=street, now=now)
        departments[code] = (dept.id, name, short)

    category_ids = {}
    for code, name, parent, department in CATEGORY_NODES:
        category = directory.create_category(
            session, runtime, code=code, name=name, parent=parent, department=department
        )
        category_ids[code] = category.id

    places = []
    for s in STREETS:
        for community in s.communities:
            directory.create_place(session, street=s.name, community=community)
            stem = community.removesuffix("社区")
            estates = [stem + suffix for suffix in rng.sample(ESTATE_SUFFIXES, 2)]
            lat, lng = s.lat + rng.uniform(-0.012, 0.012), s.lng + rng.uniform(-0.012, 0.012)
            places.append(Place(s.code, s.name, community, estates, s.roads, lat, lng))
    street_names = {s.code: s.name for s in STREETS}

    street_rules: dict[tuple[str, str], tuple[str, int]] = {}
    for leaf_code, streets in STREET_RULES:
        for code in streets or street_names:
            rule = directory.create_rule(session, department=code, category=leaf_code, street=street_names[code])
            street_rules[(leaf_code, code)] = (code, rule.id)
    community_rules: dict[tuple[str, str], tuple[str, int]] = {}
    for leaf_code, street, community, department in COMMUNITY_RULES:
        rule = directory.create_rule(
            session, department=department, category=leaf_code, street=street_names[street], community=community
        )
        community_rules[(leaf_code, community)] = (department, rule.id)
    # What hotline.routing.route answers for the demo's rules (tests/test_demo.py holds every
    # dispatch to it): a community rule beats a street rule, which beats the category's
    # default (every rule here names a leaf, and every leaf a department).
    routes = []
    for leaf in LEAVES:
        row = []
        for place in places:
            hit = community_rules.get((leaf.code, place.community)) or street_rules.get((leaf.code, place.street_code))
            row.append((hit[0], f"rule:{hit[1]}") if hit else (leaf.department, f"category:{leaf.code}"))
        routes.append(row)

    # One argon2 hash for every demo user: hashing takes ~50 ms, and the password is the same.
    password_hash = hash_password(DEMO_PASSWORD)
    users: list[tuple[str, str, str | None, str]] = [
        ("admin", "admin", None, "系统管理员"),
        ("agent1", "agent", None, "受理员王丽"),
        ("agent2", "agent", None, "受理员陈磊"),
        ("supervisor1", "supervisor", None, "督办员刘洋"),
        ("supervisor2", "supervisor", None, "督办员赵静"),
        ("editor1", "editor", None, "知识库管理员孙敏"),
    ]
    for code, (_, _, short) in departments.items():
        users.append((f"{code}.handler", "handler", code, f"{short}承办人"))
        users.append((f"{code}.leader", "leader", code, f"{short}负责人"))
    users += [(source, "integration", None, name) for source, name in INTEGRATIONS.items()]
    rows = [
        User(
            username=username,
            role=role,
            department_id=departments[code][0] if code else None,
            source=username if role == "integration" else None,
            password_hash=password_hash,
            display_name=display,
            created_at=now,
            # The demo's people have read their notices up to two days ago.
            notices_read_before=now - timedelta(days=2),
        )
        for username, role, code, display in users
    ]
    session.add_all(rows)
    session.flush()
    actors = {u.username: Actor.of(u) for u in rows}
    return Directory(
        departments=departments,
        codes={dept_id: code for code, (dept_id, _, _) in departments.items()},
        leaf_ids=[category_ids[leaf.code] for leaf in LEAVES],
        places=places,
        routes=routes,
        rules=len(street_rules) + len(community_rules),
        handlers={dept_id: actors[f"{code}.handler"] for code, (dept_id, _, _) in departments.items()},
        leaders={dept_id: actors[f"{code}.leader"] for code, (dept_id, _, _) in departments.items()},
        agents=[actors["agent1"], actors["agent2"]],
        supervisors=[actors["supervisor1"], actors["supervisor2"]],
    )
